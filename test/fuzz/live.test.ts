/**
 * The live fuzz properties (live.ts) against in-process proxies, with a fixed seed and bounded runs so CI
 * is deterministic: after each property, sessions and open handles are back to the baseline and real
 * clients still get through every front end.
 */
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { checkServes, Fixture, liveProperties, settle, startFixture } from './live';

const SEED = 42;
let f: Fixture;

before(async () => {
  f = await startFixture();
});
after(async () => {
  await f?.close();
});

for (const make of liveProperties) {
  const probe = make({} as Fixture);
  test(`fuzz live: ${probe.name}`, async () => {
    const p = make(f);
    await fc.assert(p.property as fc.IAsyncProperty<unknown>, { seed: SEED, numRuns: p.numRuns });
    await settle(f);
    await checkServes(f);
    await settle(f);
  });
}
