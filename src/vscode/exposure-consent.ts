import * as vscode from 'vscode';
import { ConsentDecision, ConsentRecord, consentKey, ExposureRequest, exposureText } from '../ui/workspace-policy';

const STATE_KEY = 'socksRelay.folderExposureConsent';

/**
 * The user's answers to "this folder wants to widen the proxy's exposure", kept in workspaceState: per
 * folder by construction, and out of reach of the folder's own files.
 */
export class ExposureConsent {
  constructor(private readonly state: vscode.Memento) {}

  get record(): ConsentRecord {
    const v = this.state.get<unknown>(STATE_KEY);
    return typeof v === 'object' && v !== null ? (v as ConsentRecord) : {};
  }

  async remember(requests: readonly Pick<ExposureRequest, 'key' | 'value'>[], decision: ConsentDecision): Promise<void> {
    const next: Record<string, ConsentDecision> = { ...this.record };
    for (const r of requests) next[consentKey(r.key, r.value)] = decision;
    await this.state.update(STATE_KEY, next);
  }

  /**
   * Asks once with a modal dialog. Returns the answer, or undefined when the dialog was dismissed (then
   * nothing is remembered and the user's values stay in effect).
   */
  async ask(requests: readonly ExposureRequest[]): Promise<ConsentDecision | undefined> {
    if (requests.length === 0) return undefined;
    const what = requests.map(exposureText).join(', and to ');
    const pick = await vscode.window.showWarningMessage(
      `This folder's settings ask SOCKS Relay to ${what}.`,
      {
        modal: true,
        detail:
          'Anyone who can reach the proxy can use your network connection and your upstreams. Until you allow it, SOCKS Relay uses your user settings for these. Your answer is remembered for this folder and these values.',
      },
      // The safe answer first: it is the dialog's default button, so Enter never widens exposure.
      'Use User Settings',
      'Allow for This Folder',
    );
    if (pick === undefined) return undefined;
    const decision: ConsentDecision = pick === 'Allow for This Folder' ? 'allow' : 'deny';
    await this.remember(requests, decision);
    return decision;
  }
}
