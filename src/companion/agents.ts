/**
 * The companion's logic without `vscode`: one agent per remote relay, started only with the user's
 * consent for that remote window (remembered when they say so). The extension glue supplies the question,
 * the memory and the agent factory, so this is unit-tested with fakes.
 */
import type { AgentState } from '../core/egress/agent';
import { AgentSummary, checkConnectRequest, ConnectResult, CONTRACT_VERSION } from './contract';

export interface AgentLike {
  readonly state: AgentState;
  start(): void;
  stop(): void;
}

export type Consent = 'once' | 'always' | undefined;

export interface CompanionDeps {
  /** Asks whether `window` may use this computer's network; undefined = no. */
  ask(window: string): Promise<Consent>;
  /** Remote windows the user allowed for good. */
  isRemembered(window: string): boolean;
  remember(window: string): Promise<void>;
  createAgent(url: string, token: string): AgentLike;
  /** For the log: never given the secret. */
  log(message: string): void;
}

interface Running {
  readonly agent: AgentLike;
  readonly window: string;
  readonly url: string;
}

export class CompanionAgents {
  private readonly running = new Map<string, Running>();

  constructor(private readonly deps: CompanionDeps) {}

  async connect(arg: unknown): Promise<ConnectResult> {
    const req = checkConnectRequest(arg);
    if (typeof req === 'string') {
      this.deps.log(`refused a connect request: ${req}`);
      return { ok: false, version: CONTRACT_VERSION, code: 'BAD_REQUEST', message: req };
    }
    if (!this.deps.isRemembered(req.window)) {
      const answer = await this.deps.ask(req.window);
      if (answer === undefined) {
        this.deps.log(`the user declined egress for ${req.window}`);
        return { ok: false, version: CONTRACT_VERSION, code: 'DECLINED', message: 'the user declined on their computer' };
      }
      if (answer === 'always') await this.deps.remember(req.window);
    }
    this.running.get(req.id)?.agent.stop();
    let agent: AgentLike;
    try {
      agent = this.deps.createAgent(req.url, req.token);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, version: CONTRACT_VERSION, code: 'FAILED', message };
    }
    this.running.set(req.id, { agent, window: req.window, url: req.url });
    agent.start();
    this.deps.log(`egress agent for ${req.window} connecting to ${req.url}`);
    return { ok: true, version: CONTRACT_VERSION, agent: 'companion' };
  }

  disconnect(arg: unknown): { ok: boolean } {
    const id = typeof arg === 'object' && arg !== null ? (arg as { id?: unknown }).id : undefined;
    if (typeof id !== 'string') return { ok: false };
    const r = this.running.get(id);
    r?.agent.stop();
    this.running.delete(id);
    return { ok: r !== undefined };
  }

  status(): AgentSummary[] {
    return [...this.running].map(([id, r]) => ({ id, window: r.window, url: r.url, status: r.agent.state.status, carried: r.agent.state.carried, open: r.agent.state.open }));
  }

  dispose(): void {
    for (const r of this.running.values()) r.agent.stop();
    this.running.clear();
  }
}
