/** Cancellation: the per-request stand-in for AbortController (src/core/cancel.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cancellation, type CancelSignal } from '../../src/core/cancel';
import { connectTcp } from '../../src/core/direct';
import { ProxyError } from '../../src/core/errors';

test('cancellation: listeners run once, in order; removed ones and later aborts do not run', () => {
  const c = new Cancellation();
  const calls: string[] = [];
  const a = (): void => void calls.push('a');
  const b = (): void => void calls.push('b');
  const gone = (): void => void calls.push('removed');
  c.signal.addEventListener('abort', a, { once: true });
  c.signal.addEventListener('abort', gone);
  c.signal.addEventListener('abort', b);
  c.signal.removeEventListener('abort', gone);
  assert.equal(c.signal.aborted, false);
  c.abort();
  c.abort(new Error('again'));
  assert.deepEqual(calls, ['a', 'b']);
  assert.equal(c.signal.aborted, true);
  assert.ok(c.signal.reason instanceof ProxyError && c.signal.reason.code === 'DIAL_FAILED');
  // A listener added after the abort never runs (as with AbortSignal).
  c.signal.addEventListener('abort', gone);
  assert.deepEqual(calls, ['a', 'b']);
});

test('cancellation: an explicit reason is kept; AbortSignal is accepted where a CancelSignal is', () => {
  const c = new Cancellation();
  const why = new Error('client left');
  c.abort(why);
  assert.equal(c.signal.reason, why);
  const native: CancelSignal = new AbortController().signal;
  assert.equal(native.aborted, false);
});

test('connectTcp: aborting a connect in progress rejects with "aborted", not with the connect\'s own outcome', async () => {
  // Port 9 on loopback refuses, but only after the connect has started; the abort comes first.
  const c = new Cancellation();
  const dial = connectTcp('127.0.0.1', 9, 10_000, c.signal);
  c.abort();
  await assert.rejects(dial, (err: unknown) => err instanceof ProxyError && err.message === 'aborted');
  // Already aborted: rejects without dialing.
  await assert.rejects(connectTcp('127.0.0.1', 9, 10_000, c.signal), /aborted/);
});
