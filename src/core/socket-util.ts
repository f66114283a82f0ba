import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

const LINGER_MS = 2_000;

/**
 * Sends a final message and closes gracefully: unread input is drained (so the kernel sends FIN,
 * not RST, and the client gets to read our reply), and the socket is destroyed after a short linger.
 */
export function closeWith(socket: Duplex, bytes?: Buffer | string): void {
  if (socket.destroyed) return;
  socket.removeAllListeners('data');
  socket.on('data', () => undefined);
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  if (bytes === undefined) socket.end();
  else socket.end(bytes);
}

/**
 * Tears a connection down with RST (the peer sees an error, not a clean EOF) where Node can, else destroys it.
 * Node cannot reset a socket while its end() is still shutting it down: the reset fails (EINVAL), 'close'
 * never comes and the handle and its descriptor leak. Then a plain destroy is the best there is.
 */
export function resetOrDestroy(socket: Duplex): void {
  if (socket.destroyed) return;
  // Only a TCP socket can send RST; another stream just ends with an error.
  if (!(socket instanceof Socket)) {
    socket.destroy(new Error('relay aborted'));
    return;
  }
  const shuttingDown = socket.writableEnded && !socket.writableFinished;
  if (!shuttingDown && !socket.connecting && socket.readyState !== 'closed') socket.resetAndDestroy();
  else socket.destroy();
}
