/**
 * Patches node:http, node:https, node:net and node:tls in this process the way VS Code's extension host
 * does (src/vs/workbench/api/node/proxyResolver.ts: `Object.assign(module, createHttpPatch(...))` and the
 * net/tls patches), with @vscode/proxy-agent from npm: `http.proxySupport` = "override" (VS Code's default),
 * a resolver that answers DIRECT, and system certificates "V2" on, which also replaces net.connect and
 * tls.connect. Code that goes through a patched entry point then behaves here as it does in VS Code.
 */
// The module objects themselves: `import * as` would give a copy under esModuleInterop, and patching a copy proves nothing.
/* eslint-disable @typescript-eslint/no-require-imports */
import http = require('node:http');
import https = require('node:https');
import net = require('node:net');
import tls = require('node:tls');
/* eslint-enable @typescript-eslint/no-require-imports */
import { createHttpPatch, createNetPatch, createProxyResolver, createTlsPatch, LogLevel, type ProxyAgentParams } from '@vscode/proxy-agent';

const quiet = (): void => undefined;

const params: ProxyAgentParams = {
  resolveProxy: () => Promise.resolve('DIRECT'),
  getProxyURL: () => undefined,
  getProxySupport: () => 'override',
  getNoProxyConfig: () => [],
  isAdditionalFetchSupportEnabled: () => false,
  isWebSocketPatchEnabled: () => false,
  addCertificatesV1: () => false,
  addCertificatesV2: () => true,
  loadSystemCertificatesFromNode: () => false,
  loadAdditionalCertificates: () => Promise.resolve([]),
  log: { trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet },
  getLogLevel: () => LogLevel.Off,
  proxyResolveTelemetry: quiet,
  isUseHostProxyEnabled: () => true,
  env: {},
};

/** What the patch replaced, to show a test that it is really in place. */
export const originals = { httpRequest: http.request, httpsRequest: https.request, netConnect: net.connect, tlsConnect: tls.connect };

// The modules' exports are writable objects; VS Code assigns to them the same way.
type Writable<T> = { -readonly [K in keyof T]: T[K] };
const { resolveProxyWithRequest } = createProxyResolver(params);
Object.assign(http as Writable<typeof http>, createHttpPatch(params, http, resolveProxyWithRequest));
Object.assign(https as Writable<typeof https>, createHttpPatch(params, https, resolveProxyWithRequest));
Object.assign(net as Writable<typeof net>, createNetPatch(params, net));
Object.assign(tls as Writable<typeof tls>, createTlsPatch(params, tls));

export function isPatched(): boolean {
  return http.request !== originals.httpRequest && https.request !== originals.httpsRequest && net.connect !== originals.netConnect && tls.connect !== originals.tlsConnect;
}
