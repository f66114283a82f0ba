/** DeadlineQueue: many deadlines on one timer (src/core/deadlines.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineQueue } from '../../src/core/deadlines';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('deadlines: expire in order, deleted ones never, each once; the queue empties', async () => {
  const expired: string[] = [];
  const q = new DeadlineQueue<string>((k) => expired.push(k));
  q.add('a', 40);
  await sleep(10);
  q.add('b', 40);
  q.add('gone', 40);
  q.delete('gone');
  q.delete('gone'); // idempotent
  await sleep(20);
  assert.deepEqual(expired, [], 'nothing before its deadline');
  await sleep(60);
  assert.deepEqual(expired, ['a', 'b']);
  assert.equal(q.size, 0);
  // A new entry after the queue went idle re-arms the timer.
  q.add('c', 10);
  await sleep(40);
  assert.deepEqual(expired, ['a', 'b', 'c']);
});

test('deadlines: clear() drops every entry and the timer', async () => {
  const expired: number[] = [];
  const q = new DeadlineQueue<number>((k) => expired.push(k));
  for (let i = 0; i < 5; i++) q.add(i, 10);
  q.clear();
  await sleep(40);
  assert.deepEqual(expired, []);
  assert.equal(q.size, 0);
});
