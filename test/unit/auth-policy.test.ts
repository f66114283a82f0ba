/** Who must authenticate: one rule for SOCKS5, SOCKS4 and HTTP (src/core/auth.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anonymousAllowed, credentialsChecked } from '../../src/core/auth';

const alice = [{ username: 'alice', password: 'x' }];

test('no users: anyone may connect and no credentials are asked for', () => {
  assert.equal(credentialsChecked({ users: [], allowNoAuth: false }), false);
  assert.equal(anonymousAllowed({ users: [], allowNoAuth: false }), true);
});

test('users: credentials are checked and clients without them are refused, unless allowNoAuth', () => {
  assert.equal(credentialsChecked({ users: alice, allowNoAuth: false }), true);
  assert.equal(anonymousAllowed({ users: alice, allowNoAuth: false }), false);
  assert.equal(credentialsChecked({ users: alice, allowNoAuth: true }), true);
  assert.equal(anonymousAllowed({ users: alice, allowNoAuth: true }), true);
});
