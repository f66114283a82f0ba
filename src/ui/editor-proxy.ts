/**
 * Routing VS Code's own HTTP traffic through the relay (`http.proxy`): when it may be done, and what the
 * UI says. Pure; src/vscode/editor-proxy.ts does the writing.
 */
import { type ListenerInfo, proxyUrl } from './env';

export interface EditorProxyInput {
  readonly enabled: boolean;
  readonly listener: ListenerInfo | undefined;
  /** `vscode.env.remoteName`. */
  readonly remoteName: string | undefined;
  /** A browser window (code-server, Codespaces): its user settings live with the extension host, on the server. */
  readonly web: boolean;
  /** `http.useLocalProxyConfiguration` (on by default since VS Code 1.97). */
  readonly useLocalProxyConfiguration: boolean;
}

export type EditorProxyPlan =
  | { readonly apply: true; readonly url: string }
  | { readonly apply: false; readonly why: string | undefined };

export function editorProxyPlan(i: EditorProxyInput): EditorProxyPlan {
  if (!i.enabled) return { apply: false, why: undefined };
  if (!i.listener) return { apply: false, why: 'the proxy is not running' };
  if (i.listener.credentials) return { apply: false, why: 'the listener requires credentials, which http.proxy would have to hold in settings.json; set authentication to "none" to route the editor' };
  // microsoft/vscode#134964: in a remote window http.proxy is used on the user's computer too, where the
  // relay's loopback address does not exist.
  if (i.remoteName !== undefined && !i.web && i.useLocalProxyConfiguration) {
    return { apply: false, why: `in this remote window (${i.remoteName}) VS Code uses your computer's proxy settings (http.useLocalProxyConfiguration), and the relay listens on the remote` };
  }
  return { apply: true, url: proxyUrl('http', i.listener, false) };
}

/** The Listener's "Editor traffic" row. */
export function editorProxyText(plan: EditorProxyPlan, enabled: boolean): { description: string; tooltip: string } {
  if (plan.apply) {
    return {
      description: `routed (http.proxy → ${plan.url})`,
      tooltip: "VS Code's own HTTP(S) requests and its extensions' from this window's extension host go through the relay (rules apply, sessions show here). Your previous http.proxy comes back when the proxy stops.",
    };
  }
  if (!enabled) return { description: 'not routed (socksRelay.editorTraffic is off)', tooltip: "Turn on socksRelay.editorTraffic to route VS Code's own HTTP traffic through the relay while it runs." };
  return { description: 'not routed', tooltip: `Editor traffic is not routed: ${plan.why ?? 'unknown'}.` };
}
