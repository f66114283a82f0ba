/** The decoder properties (decoders.ts) with a fixed seed and a bounded number of runs, so CI is deterministic. */
import { test } from 'node:test';
import fc from 'fast-check';
import { decoderProperties } from './decoders';

const SEED = 42;

for (const p of decoderProperties) {
  test(`fuzz: ${p.name}`, () => {
    fc.assert(p.property as fc.IProperty<unknown>, { seed: SEED, numRuns: p.numRuns });
  });
}
