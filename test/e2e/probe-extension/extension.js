// Test-only extension: an http.get from the extension host, where VS Code's proxy support (@vscode/proxy-agent)
// patches node:http and applies http.proxy. The URL comes from E2E_PROBE_URL; the answer is shown as a notice.
const http = require('http');
const vscode = require('vscode');

exports.activate = (context) => {
  context.subscriptions.push(
    vscode.commands.registerCommand('e2eProbe.fetch', () => {
      http
        .get(process.env.E2E_PROBE_URL, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (body += d));
          res.on('end', () => vscode.window.showInformationMessage(`probe: ${res.statusCode} ${body.trim()}`));
        })
        .on('error', (err) => vscode.window.showInformationMessage(`probe: error ${err.message}`));
    }),
  );
};
