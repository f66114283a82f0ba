/**
 * The HTTP-proxy interop suites again, in a process whose node:http, node:https, node:net and node:tls are
 * patched as VS Code's extension host patches them (test/helpers/vscode-patch.ts): forwarded requests,
 * CONNECT, malformed input, early half-close on every route and the HTTP(S) upstreams must behave exactly
 * as in plain Node. (Inside VS Code, forwarded requests once went to localhost:80: http.request's patch
 * put its own agent on them, which ignores createConnection.)
 */
import { isPatched } from '../helpers/vscode-patch';
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('node:http, node:https, node:net and node:tls are patched as in VS Code', () => {
  assert.ok(isPatched());
});

// Each suite registers its tests in this process, under the patch.
import './http-proxy.test';
import './http-malformed.test';
import './early-half-close.test';
import './upstreams.test';
