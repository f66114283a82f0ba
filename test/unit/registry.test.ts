import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionRegistry } from '../../src/core/registry';

function fakeSocket(): { bytesRead: number; bytesWritten: number } {
  return { bytesRead: 0, bytesWritten: 0 };
}

test('registry: open/change/close events, live counters, totals, bounded closed list', () => {
  const reg = new SessionRegistry(2);
  const events: string[] = [];
  reg.on('open', (s) => events.push(`open ${s.id}`));
  reg.on('change', (s) => events.push(`change ${s.id} ${s.state}`));
  reg.on('close', (s) => events.push(`close ${s.id} ${s.outcome}`));
  const s = reg.open('socks5', '127.0.0.1:5000');
  s.update({ command: 'connect', destination: 'example.com:443', state: 'connecting' });
  const sock = fakeSocket();
  sock.bytesWritten = 10; // handshake bytes to an upstream are not counted
  sock.bytesRead = 3;
  s.track(sock);
  s.update({ state: 'open' });
  sock.bytesWritten += 1000;
  sock.bytesRead += 5000;
  assert.equal(s.bytesUp, 1000);
  assert.equal(s.bytesDown, 5000);
  assert.deepEqual(reg.totals(), { active: 1, opened: 1, bytesUp: 1000, bytesDown: 5000, datagramsUp: 0, datagramsDown: 0, droppedDatagrams: 0 });
  s.close('ok');
  sock.bytesWritten += 999; // after close the counters are frozen
  assert.equal(s.bytesUp, 1000);
  assert.deepEqual(events, ['open 1', 'change 1 connecting', 'change 1 open', 'close 1 ok']);
  const u = reg.open('socks5', '127.0.0.1:5001');
  u.countDatagram('up', 10);
  u.countDatagram('down', 20);
  u.countDatagram('down', 20);
  u.countDropped();
  u.countDatagram('up', 7);
  u.countDropped(7); // counted as sent, then found undeliverable: the up count is taken back
  assert.deepEqual(reg.totals(), { active: 1, opened: 2, bytesUp: 1010, bytesDown: 5040, datagramsUp: 1, datagramsDown: 2, droppedDatagrams: 2 });
  assert.equal(u.info().droppedDatagrams, 2);
  u.close('ok');
  reg.open('http', 'c').close('x');
  assert.equal(reg.recentlyClosed().length, 2, 'closed list keeps the newest 2');
  assert.deepEqual(reg.recentlyClosed().map((x) => x.id), [2, 3]);
  assert.equal(reg.totals().bytesDown, 5040, 'totals keep closed sessions beyond the list');
  // Past the batch trim (twice the bound) the list is still the newest 2, in order.
  for (let i = 0; i < 7; i++) reg.open('http', 'c').close('x');
  assert.deepEqual(reg.recentlyClosed().map((x) => x.id), [9, 10]);
  reg.clearClosed();
  assert.equal(reg.recentlyClosed().length, 0);
});

test('registry: terminate calls the session closer once', () => {
  const reg = new SessionRegistry();
  const s = reg.open('socks5', 'c');
  const reasons: string[] = [];
  s.closer = {
    close: (r) => {
      reasons.push(r);
      s.close(r);
    },
  };
  assert.equal(reg.terminate(s.id), true);
  assert.equal(reg.terminate(s.id), false);
  assert.deepEqual(reasons, ['closed by user']);
});
