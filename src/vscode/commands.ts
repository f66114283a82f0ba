import * as vscode from 'vscode';
import { describeError } from '../core/errors';
import { parseMatch } from '../core/rules';
import { hopTakesPassword, redactUrl } from '../core/upstream/url';
import { parseHop, splitChain, splitSecrets, upstreamUrlPrompt, validateChain } from '../ui/upstream-input';
import { hopUrls } from '../ui/routing-config';
import { upstreamUrlText } from '../ui/config-model';
import { proxyUrl } from '../ui/env';
import { SECTION, SettingKey, settingId } from '../ui/setting-keys';
import type { RuleSetting, UpstreamSetting } from '../ui/settings';
import { isNode } from '../ui/view-node';
import { updateSetting } from './configuration';
import type { ProxyController } from './controller';
import { ask } from './input';
import { checkUpstream } from './routing';
import type { SessionsView } from './views';
import { proxiedTerminalEnv } from './terminal-env';
import { EGRESS_LABEL, EGRESS_ROUTE, egressStatusText } from '../ui/egress-model';
import type { RoutedTerminals } from './routed-terminals';

type Command = (...args: unknown[]) => unknown;

/** The upstream row a tree action was invoked on ('' for Direct), or a name passed by another command. */
function upstreamName(arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  return isNode(arg, 'upstream') ? arg.upstream : undefined;
}

/** The rule row a tree action was invoked on, or an index passed by another command. */
function ruleIndex(arg: unknown): number | undefined {
  if (typeof arg === 'number') return arg;
  return isNode(arg, 'rule') ? arg.index : undefined;
}

export function registerCommands(context: vscode.ExtensionContext, controller: ProxyController, sessions: SessionsView, log: vscode.LogOutputChannel, terminals: RoutedTerminals): void {
  const s = (): typeof controller.settings => controller.settings;

  /** Writes a setting where it is in effect now (see SettingsSource.target). */
  async function writeSetting(key: SettingKey, value: unknown): Promise<void> {
    const target = controller.source.target(key);
    // Choosing a value for the folder from our own UI is the user's OK for it: no second question.
    if (target !== vscode.ConfigurationTarget.Global) await controller.source.allowFolderValue(key, value);
    await updateSetting(key, value, target);
    // A value another window passed on for this key gives way to the user's own choice here, even when this
    // window's view already held the written value (then VS Code reports no change).
    if (target === vscode.ConfigurationTarget.Global && controller.source.forgetUserValue(key)) await controller.applySettings();
  }

  async function upstreamFlow(existing?: UpstreamSetting): Promise<void> {
    const title = existing ? `Edit Upstream "${existing.name}"` : 'Add Upstream';
    const others = s().upstreams.filter((u) => u.name !== existing?.name);
    const name = await ask({
      title,
      step: 1,
      totalSteps: 3,
      prompt: 'A short name for this upstream (used by rules)',
      value: existing?.name ?? '',
      placeholder: 'corp-proxy',
      validate: (v) =>
        v.trim() === ''
          ? 'Enter a name'
          : ['direct', 'block'].includes(v.trim())
            ? `"${v.trim()}" is reserved for rules`
            : others.some((u) => u.name === v.trim())
              ? `An upstream named "${v.trim()}" exists already`
              : undefined,
    });
    if (name === undefined) return;
    const chain = await ask({
      title,
      step: 2,
      totalSteps: 3,
      prompt: upstreamUrlPrompt(),
      value: existing ? hopUrls(existing).join(', ') : '',
      placeholder: 'socks5h://user@proxy.example:1080',
      validate: validateChain,
    });
    if (chain === undefined) return;
    const { urls, passwords } = splitSecrets(splitChain(chain));
    // Ask for a password for each hop that names a user but did not carry one.
    for (let i = 0; i < urls.length; i++) {
      const { spec } = parseHop(urls[i]);
      if (spec.kind === 'direct' || !hopTakesPassword(spec) || !spec.username || passwords[i] !== undefined) continue;
      const stored = existing ? await controller.secrets.upstreamPassword(existing.name, i) : undefined;
      const pw = await ask({
        title,
        step: 3,
        totalSteps: 3,
        prompt: `Password for ${spec.username} at ${spec.host}:${spec.port} (kept in VS Code's secret storage${stored ? '; leave empty to keep the stored one' : ''})`,
        password: true,
      });
      if (pw === undefined) return;
      passwords[i] = pw === '' ? stored : pw;
    }
    const trimmed = name.trim();
    if (existing && existing.name !== trimmed) await controller.secrets.deleteUpstream(existing.name, hopUrls(existing).length);
    for (let i = 0; i < urls.length; i++) await controller.secrets.setUpstreamPassword(trimmed, i, passwords[i]);
    const entry: UpstreamSetting = { name: trimmed, url: urls.length === 1 ? urls[0] : urls };
    const list = s().upstreams.map((u) => (u.name === existing?.name ? entry : u));
    if (!existing) list.push(entry);
    await writeSetting('upstreams', list);
    if (existing && s().activeUpstream === existing.name && existing.name !== trimmed) await writeSetting('activeUpstream', trimmed);
    // Rules that named the old upstream follow the rename.
    if (existing && existing.name !== trimmed) await writeSetting('rules', s().rules.map((r) => (r.action === existing.name ? { ...r, action: trimmed } : r)));
    await controller.reloadRouting();
    log.info(`upstream "${trimmed}" ${existing ? 'updated' : 'added'}: ${urls.map(redactUrl).join(' → ')}`);
    if (!existing) {
      const pick = await vscode.window.showInformationMessage(`Upstream "${trimmed}" added.`, 'Use It Now', 'Test It');
      if (pick === 'Use It Now') await writeSetting('activeUpstream', trimmed);
      else if (pick === 'Test It') await testUpstream(trimmed);
    }
  }

  async function testUpstream(name: string | undefined): Promise<void> {
    const upstream = name === '' ? undefined : s().upstreams.find((u) => u.name === name);
    if (name !== '' && !upstream) return;
    const target = s().upstreamTestTarget;
    const label = upstream ? `"${upstream.name}"` : 'the direct route';
    const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `SOCKS Relay: testing ${label} → ${target}…` }, () =>
      checkUpstream(upstream, controller.secrets, target),
    );
    if (result.ok) {
      log.info(`test ${label} → ${target}: connected in ${result.latencyMs} ms`);
      void vscode.window.showInformationMessage(`SOCKS Relay: ${label} reached ${target} in ${result.latencyMs} ms.`);
      return;
    }
    log.warn(`test ${label} → ${target}: ${result.error}`);
    const actions = upstream ? (result.authFailed ? ['Edit Credentials'] : ['Edit Upstream']) : [];
    const pick = await vscode.window.showErrorMessage(`SOCKS Relay: ${label} could not reach ${target}: ${result.error}`, ...actions, 'Change Test Target');
    if ((pick === 'Edit Credentials' || pick === 'Edit Upstream') && upstream) await upstreamFlow(upstream);
    else if (pick === 'Change Test Target') void vscode.commands.executeCommand('workbench.action.openSettings', settingId('upstreamTestTarget'));
  }

  async function ruleFlow(index?: number): Promise<void> {
    const existing = index !== undefined ? s().rules[index] : undefined;
    const title = existing ? `Edit Rule ${index! + 1}` : 'Add Rule';
    const match = await ask({
      title,
      step: 1,
      totalSteps: 2,
      prompt: 'Match: a domain (example.com), wildcard (*.corp.example), CIDR (10.0.0.0/8, fd00::/8), port (port:22, port:8000-8999); several separated by spaces must all match',
      value: existing?.match ?? '',
      placeholder: '*.corp.example',
      validate: (v) => {
        try {
          parseMatch(v);
          return undefined;
        } catch (err) {
          return describeError(err);
        }
      },
    });
    if (match === undefined) return;
    const items: (vscode.QuickPickItem & { action: string })[] = [
      { label: '$(arrow-right) Direct', description: 'connect from this machine', action: 'direct' },
      { label: '$(circle-slash) Block', description: 'refuse (SOCKS reply X\'02\', HTTP 403)', action: 'block' },
      ...(controller.egress.available ? [{ label: `$(vm-connect) ${EGRESS_LABEL}`, description: 'leave from the computer VS Code runs on', action: EGRESS_ROUTE }] : []),
      ...s().upstreams.map((u) => ({ label: `$(server) ${u.name}`, description: upstreamUrlText(u), action: u.name })),
    ];
    const qp = await vscode.window.showQuickPick(
      items.map((i) => ({ ...i, picked: i.action === existing?.action })),
      { title: `${title} (2/2)`, placeHolder: `Where should connections matching "${match.trim()}" go?`, ignoreFocusOut: true },
    );
    if (!qp) return;
    const rule: RuleSetting = { match: match.trim(), action: qp.action };
    const rules = [...s().rules];
    if (index !== undefined && existing) rules[index] = rule;
    else rules.push(rule);
    await writeSetting('rules', rules);
    await controller.reloadRouting();
  }

  async function moveRule(arg: unknown, delta: number): Promise<void> {
    const i = ruleIndex(arg);
    const rules = [...s().rules];
    if (i === undefined || i + delta < 0 || i + delta >= rules.length) return;
    [rules[i], rules[i + delta]] = [rules[i + delta], rules[i]];
    await writeSetting('rules', rules);
  }

  async function editListener(): Promise<void> {
    const cur = s();
    const pick = await vscode.window.showQuickPick(
      [
        { label: '$(plug) Address', description: cur.host, key: 'host' },
        { label: '$(symbol-number) Port', description: String(cur.port), key: 'port' },
        { label: '$(lock) Authentication', description: cur.auth, key: 'auth' },
      ],
      { title: 'Edit Listener', placeHolder: 'What do you want to change?' },
    );
    if (!pick) return;
    if (pick.key === 'host') {
      const v = await ask({
        title: 'Listener Address',
        prompt: 'Address to listen on. 127.0.0.1 or ::1 keep the proxy to this machine; 0.0.0.0 or :: expose it to the network.',
        value: cur.host,
        validate: (x) => (x.trim() === '' ? 'Enter an address' : undefined),
      });
      if (v !== undefined) await writeSetting('listen.host', v.trim());
    } else if (pick.key === 'port') {
      const v = await ask({
        title: 'Listener Port',
        prompt: 'Port to listen on (0 picks a free one at each start)',
        value: String(cur.port),
        validate: (x) => (/^\d+$/.test(x.trim()) && Number(x) <= 65535 ? undefined : 'Enter a whole number from 0 to 65535'),
      });
      if (v !== undefined) await writeSetting('listen.port', Number(v.trim()));
    } else {
      const mode = await vscode.window.showQuickPick(
        [
          { label: 'none', description: 'no authentication (anyone who can reach the port can use it)' },
          { label: 'generated', description: 'a fresh password each run, given to VS Code terminals' },
          { label: 'password', description: 'your own username and password (stored in secret storage), plus the per-run one for terminals' },
        ],
        { title: 'Listener Authentication' },
      );
      if (!mode) return;
      if (mode.label === 'password') {
        const user = await ask({ title: 'Listener Username', step: 1, totalSteps: 2, prompt: 'Username clients must send', value: cur.username, validate: (x) => (x.trim() === '' ? 'Enter a username' : undefined) });
        if (user === undefined) return;
        const pw = await ask({ title: 'Listener Password', step: 2, totalSteps: 2, prompt: 'Password (kept in VS Code secret storage)', password: true, validate: (x) => (x === '' ? 'Enter a password' : undefined) });
        if (pw === undefined) return;
        await controller.secrets.setListenerPassword(pw);
        await writeSetting('auth.username', user.trim());
      }
      await writeSetting('auth.mode', mode.label);
    }
  }

  async function selectUpstream(): Promise<void> {
    const active = s().activeUpstream;
    const pick = await vscode.window.showQuickPick(
      [
        { label: '$(arrow-right) Direct', description: active === '' ? 'active' : 'no upstream', name: '' },
        ...(controller.egress.available
          ? [{ label: `$(vm-connect) ${EGRESS_LABEL}`, description: `${egressStatusText(controller.egress.view)}${active === EGRESS_ROUTE ? ' · active' : ''}`, name: EGRESS_ROUTE }]
          : []),
        ...s().upstreams.map((u) => ({ label: `$(server) ${u.name}`, description: `${upstreamUrlText(u)}${u.name === active ? ' · active' : ''}`, name: u.name })),
        { label: '$(add) Add Upstream…', description: '', name: '\0add' },
      ],
      { title: 'SOCKS Relay: Default Route', placeHolder: 'Connections that match no rule go through…' },
    );
    if (!pick) return;
    if (pick.name === '\0add') return upstreamFlow();
    await writeSetting('activeUpstream', pick.name);
  }

  async function showActions(): Promise<void> {
    const running = controller.running;
    const items: (vscode.QuickPickItem & { run?: () => unknown })[] = [
      running
        ? { label: '$(debug-stop) Stop Proxy', description: controller.listeningText(), run: () => controller.stop() }
        : { label: '$(play) Start Proxy', description: `${s().host}:${s().port}`, run: () => controller.start() },
      { label: '$(arrow-swap) Select Upstream…', description: `now: ${controller.upstreamText()}`, run: selectUpstream },
      { label: '$(list-flat) Show Sessions', run: () => sessions.reveal() },
      { label: '$(terminal) New Terminal Through Proxy', run: () => vscode.commands.executeCommand('socksRelay.newTerminal') },
      { label: '$(terminal) New Terminal Through…', description: 'a route of its own', run: () => terminals.create() },
      { label: '$(copy) Copy Proxy URL', run: () => vscode.commands.executeCommand('socksRelay.copyProxyUrl') },
      { label: '$(output) Show Log', run: () => log.show() },
      { label: '$(gear) Open Settings', run: () => vscode.commands.executeCommand('workbench.action.openSettings', SECTION) },
    ];
    const pick = await vscode.window.showQuickPick(items, { title: `SOCKS Relay (${controller.state})` });
    await pick?.run?.();
  }

  const commands: Record<string, Command> = {
    'socksRelay.toggle': () => controller.toggle(),
    'socksRelay.start': () => controller.start(),
    'socksRelay.stop': () => controller.stop(),
    'socksRelay.restart': () => controller.restart(),
    'socksRelay.showActions': showActions,
    'socksRelay.showLog': () => log.show(),
    'socksRelay.showSessions': () => sessions.reveal(),
    'socksRelay.selectUpstream': selectUpstream,
    'socksRelay.addUpstream': () => upstreamFlow(),
    'socksRelay.addRule': () => ruleFlow(),
    'socksRelay.editListener': editListener,
    'socksRelay.copyProxyUrl': async () => {
      const l = controller.listener() ?? { host: s().host, port: s().port };
      const url = proxyUrl('socks5h', l);
      await vscode.env.clipboard.writeText(url);
      void vscode.window.showInformationMessage(`Copied ${proxyUrl('socks5h', l, false)}${controller.listener()?.credentials ? ' (with this run\'s credentials)' : ''}`);
    },
    'socksRelay.newTerminal': async () => {
      if (!controller.running && !(await controller.start())) return;
      const env = proxiedTerminalEnv(controller);
      const terminal = vscode.window.createTerminal({ name: 'SOCKS Relay', env, iconPath: new vscode.ThemeIcon('radio-tower') });
      terminal.show();
    },
    'socksRelay.newTerminalThrough': () => terminals.create(),
    'socksRelay.clearClosedSessions': () => controller.clearClosed(),
    'socksRelay.manageTrust': () => vscode.commands.executeCommand('workbench.trust.manage'),
    'socksRelay.reviewFolderSettings': () => controller.reviewFolderSettings(),
    'socksRelay.filterSessions': async () => {
      const v = await vscode.window.showInputBox({ title: 'Filter Sessions', prompt: 'Show sessions whose destination, client, route or protocol contains…', value: sessions.currentFilter });
      if (v !== undefined) sessions.setFilter(v);
    },
    'socksRelay.clearSessionFilter': () => sessions.setFilter(''),
    'socksRelay.groupSessionsByHost': () => writeSetting('sessions.groupBy', 'host'),
    'socksRelay.groupSessionsByTerminal': () => writeSetting('sessions.groupBy', 'terminal'),
    'socksRelay.ungroupSessions': () => writeSetting('sessions.groupBy', 'none'),
    'socksRelay.egress.copyAgentCommand': () => controller.egress.copyAgentCommand(),
    'socksRelay.egress.reconnect': () => controller.egress.askCompanion(),
    // Tree-only commands (hidden from the palette).
    'socksRelay.upstream.use': (arg) => writeSetting('activeUpstream', upstreamName(arg) ?? ''),
    'socksRelay.upstream.test': (arg) => testUpstream(upstreamName(arg)),
    'socksRelay.upstream.edit': async (arg) => {
      const u = s().upstreams.find((x) => x.name === upstreamName(arg));
      if (u) await upstreamFlow(u);
    },
    'socksRelay.upstream.remove': async (arg) => {
      const name = upstreamName(arg);
      const u = s().upstreams.find((x) => x.name === name);
      if (!u) return;
      const users = s().rules.filter((r) => r.action === u.name).length;
      const ok = await vscode.window.showWarningMessage(
        `Remove upstream "${u.name}"?${users ? ` ${users} rule(s) use it and will be removed too.` : ''}`,
        { modal: true },
        'Remove',
      );
      if (ok !== 'Remove') return;
      await controller.secrets.deleteUpstream(u.name, hopUrls(u).length);
      await writeSetting('upstreams', s().upstreams.filter((x) => x.name !== u.name));
      if (users) await writeSetting('rules', s().rules.filter((r) => r.action !== u.name));
      if (s().activeUpstream === u.name) await writeSetting('activeUpstream', '');
    },
    'socksRelay.rule.edit': (arg) => ruleFlow(ruleIndex(arg)),
    'socksRelay.rule.moveUp': (arg) => moveRule(arg, -1),
    'socksRelay.rule.moveDown': (arg) => moveRule(arg, 1),
    'socksRelay.rule.remove': async (arg) => {
      const i = ruleIndex(arg);
      if (i === undefined) return;
      await writeSetting('rules', s().rules.filter((_, j) => j !== i));
    },
    'socksRelay.session.close': (arg) => {
      if (isNode(arg, 'session')) controller.terminate(arg.sessionId);
    },
    'socksRelay.session.copyDestination': async (arg) => {
      const d = isNode(arg, 'session') ? arg.destination : undefined;
      if (d) await vscode.env.clipboard.writeText(d);
    },
  };
  for (const [id, fn] of Object.entries(commands)) {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          await fn(...args);
        } catch (err) {
          log.error(`${id}: ${describeError(err)}`);
          void vscode.window.showErrorMessage(`SOCKS Relay: ${describeError(err)}`);
        }
      }),
    );
  }
}
