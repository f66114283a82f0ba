// Runs SOCKS Relay's engine (bundled by bench/run.mjs from src/core) in a process of its own, so the
// bench can read its memory from /proc and the load generator does not share its event loop.
// Usage: node bench/proxy-runner.mjs ENGINE_BUNDLE PORT [--ui] [--workers N]
// --workers N runs N processes sharing the port through node:cluster with SCHED_NONE (the kernel spreads
// the connections), as `socks-relay --workers N` does; each has its own registry.
// --ui attaches what the VS Code UI does: listeners on open/change/close and a 1 s timer that reads
// registry.totals() and registry.snapshot() for the status bar and the sessions view.
import cluster from 'node:cluster';
import { createRequire } from 'node:module';

const [engine, portArg, ...flags] = process.argv.slice(2);
const workers = flags.includes('--workers') ? Number(flags[flags.indexOf('--workers') + 1]) : 1;
if (workers > 1 && cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  for (let i = 0; i < workers; i++) cluster.fork();
  const all = (sig) => Object.values(cluster.workers).forEach((w) => w.process.kill(sig));
  process.on('SIGUSR2', () => all('SIGUSR2'));
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => (all('SIGKILL'), process.exit(0)));
} else {
  serve();
}

function serve() {
const { ProxyServer } = createRequire(import.meta.url)(engine);

const server = new ProxyServer({
  host: '127.0.0.1',
  port: Number(portArg),
  maxSessions: 20_000,
  maxUdpAssociations: 1024,
});

if (flags.includes('--ui')) {
  const r = server.registry;
  let dirty = false;
  let events = 0;
  let status = '';
  r.on('open', (s) => {
    events++;
    dirty = dirty || s.id > 0;
  });
  r.on('change', (s) => {
    events++;
    dirty = dirty || s.state !== undefined;
  });
  r.on('close', (s) => {
    events++;
    dirty = dirty || s.outcome !== undefined;
  });
  setInterval(() => {
    const t = r.totals();
    const rows = r.snapshot();
    status = `${t.active} active, ${t.opened} opened, ${t.bytesUp}/${t.bytesDown} B, ${rows.length} rows, ${events} events`;
    dirty = false;
  }, 1000);
  process.on('SIGUSR1', () => console.log(status));
}

// The bench sends SIGUSR2 before reading memory: with --expose-gc, collect garbage so that what is
// left is what the sessions hold, not the young generation V8 grew while they were opened.
process.on('SIGUSR2', () => globalThis.gc?.());

server.listen().then(() => console.log('ready'));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
}
