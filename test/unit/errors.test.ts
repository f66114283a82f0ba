import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProxyError, Reply, replyForError, replyName } from '../../src/core/errors';
import { checkCredentials } from '../../src/core/auth';
import { formatBytes, formatDuration } from '../../src/core/format';

function sysErr(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

test('system errors map to RFC 1928 reply codes', () => {
  assert.equal(replyForError(sysErr('ECONNREFUSED')), Reply.CONNECTION_REFUSED);
  assert.equal(replyForError(sysErr('ENETUNREACH')), Reply.NETWORK_UNREACHABLE);
  assert.equal(replyForError(sysErr('EHOSTUNREACH')), Reply.HOST_UNREACHABLE);
  assert.equal(replyForError(sysErr('ENOTFOUND')), Reply.HOST_UNREACHABLE);
  assert.equal(replyForError(sysErr('EAI_AGAIN')), Reply.HOST_UNREACHABLE);
  assert.equal(replyForError(sysErr('ETIMEDOUT')), Reply.TTL_EXPIRED);
  assert.equal(replyForError(sysErr('EPIPE')), Reply.GENERAL_FAILURE);
  assert.equal(replyForError(new ProxyError('BLOCKED', 'x', Reply.NOT_ALLOWED)), Reply.NOT_ALLOWED);
  assert.equal(replyName(5), 'connection refused');
  assert.equal(replyName(0x42), 'unassigned reply 0x42');
});

test('credentials: exact match only', () => {
  const users = [
    { username: 'alice', password: 'pw1' },
    { username: 'bob', password: 'pw2' },
  ];
  assert.equal(checkCredentials(users, 'alice', 'pw1'), true);
  assert.equal(checkCredentials(users, 'bob', 'pw2'), true);
  assert.equal(checkCredentials(users, 'alice', 'pw2'), false);
  assert.equal(checkCredentials(users, 'alice', 'pw1 '), false);
  assert.equal(checkCredentials(users, 'Alice', 'pw1'), false);
  assert.equal(checkCredentials([], 'alice', 'pw1'), false);
});

test('byte and duration formatting', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1200), '1.2 KB');
  assert.equal(formatBytes(4_500_000), '4.5 MB');
  assert.equal(formatBytes(999_960), '1.0 MB');
  assert.equal(formatBytes(250_000_000_000), '250 GB');
  assert.equal(formatDuration(850), '850 ms');
  assert.equal(formatDuration(12_400), '12 s');
  assert.equal(formatDuration(185_000), '3 m 05 s');
  assert.equal(formatDuration(7_800_000), '2 h 10 m');
});
