#!/usr/bin/env node
/**
 * Long fuzz runs: the properties of test/fuzz (decoders.ts, live.ts) with random seeds, over and over until
 * the time is up. Prints the seed and counterexample of any failure so it can be replayed:
 *   npm run fuzz -- --seconds 300
 *   npm run fuzz -- --seed 12345 --only "UDP"      (replays one seed on the properties whose name matches)
 * Needs `npm run compile` first (the npm script does it).
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const fc = require('fast-check');
const { decoderProperties } = require(path.join(root, 'out/test/fuzz/decoders.js'));
const live = require(path.join(root, 'out/test/fuzz/live.js'));

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '60' }, seed: { type: 'string' }, only: { type: 'string' }, runs: { type: 'string' } },
  strict: true,
});
const seconds = Number(values.seconds);
if (!Number.isFinite(seconds) || seconds <= 0) {
  console.error('fuzz: --seconds must be a positive number');
  process.exit(2);
}
const deadline = Date.now() + seconds * 1000;
const match = (name) => values.only === undefined || name.includes(values.only);

const fixture = await live.startFixture();
const props = [...decoderProperties, ...live.liveProperties.map((make) => make(fixture))].filter((p) => match(p.name));
if (props.length === 0) {
  console.error(`fuzz: no property matches "${values.only}"`);
  process.exit(2);
}
const stats = new Map(props.map((p) => [p.name, { rounds: 0, runs: 0 }]));
const failures = [];
let round = 0;
console.log(`fuzz: ${props.length} properties for ${seconds} s${values.seed ? ` with seed ${values.seed}` : ' with random seeds'}`);
outer: while (Date.now() < deadline) {
  round++;
  for (const p of props) {
    if (Date.now() >= deadline) break outer;
    const seed = values.seed !== undefined ? Number(values.seed) : (Math.random() * 2 ** 31) | 0;
    const numRuns = values.runs !== undefined ? Number(values.runs) : p.numRuns;
    // Bounded: a property stops at the deadline (what ran so far counts), and shrinking a failure gets 30 s.
    const result = await fc.check(p.property, { seed, numRuns, interruptAfterTimeLimit: Math.max(1_000, deadline - Date.now()) + 30_000 });
    const s = stats.get(p.name);
    s.rounds++;
    s.runs += result.numRuns;
    if (result.failed) {
      failures.push({ name: p.name, seed, counterexample: result.counterexample, error: result.errorInstance });
      console.log(`\nFAIL ${p.name}\n  seed ${seed} (replay: npm run fuzz -- --seed ${seed} --only ${JSON.stringify(p.name.slice(0, 30))})`);
      console.log(`  counterexample: ${fc.stringify(result.counterexample)}`);
      console.log(`  ${String(result.errorInstance?.stack ?? result.errorInstance).split('\n').slice(0, 6).join('\n  ')}`);
    }
    try {
      await live.settle(fixture);
      if (!decoderProperties.includes(p)) await live.checkServes(fixture);
    } catch (err) {
      failures.push({ name: `${p.name} (after)`, seed, error: err });
      console.log(`\nFAIL after ${p.name} (seed ${seed}): ${err?.message ?? err}`);
    }
  }
  if (values.seed !== undefined) break;
}
await fixture.close();
console.log(`\nfuzz: ${round} round(s) in a ${seconds} s budget`);
for (const [name, s] of stats) console.log(`  ${String(s.runs).padStart(8)} runs  ${name}`);
console.log(failures.length === 0 ? 'fuzz: no failures' : `fuzz: ${failures.length} failure(s)`);
process.exit(failures.length === 0 ? 0 : 1);
