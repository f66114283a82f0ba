/**
 * Where the windows of one user find each other: a private directory (0700, owned by the user) holding
 * the control socket and the secret (0600). On Windows the socket is a named pipe whose name is derived
 * from the user, and the secret file lives in the user's local app data.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export interface ControlPaths {
  readonly dir: string;
  /** A Unix socket path, or a Windows named pipe (\\.\pipe\…). */
  readonly socket: string;
  readonly token: string;
  /** Held (a directory) while a window cleans up after an owner that crashed. */
  readonly lock: string;
}

export function controlPaths(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): ControlPaths {
  const user = os.userInfo();
  let dir: string;
  if (env.SOCKS_RELAY_RUNTIME_DIR) dir = env.SOCKS_RELAY_RUNTIME_DIR;
  else if (platform === 'win32') dir = path.join(env.LOCALAPPDATA ?? os.homedir(), 'socks-relay');
  else if (env.XDG_RUNTIME_DIR) dir = path.join(env.XDG_RUNTIME_DIR, 'socks-relay');
  else dir = path.join(os.tmpdir(), `socks-relay-${user.uid}`);
  const socket =
    platform === 'win32'
      ? `\\\\.\\pipe\\socks-relay-${createHash('sha256').update(`${user.username}\0${dir}`).digest('hex').slice(0, 24)}`
      : path.join(dir, 'control.sock');
  return { dir, socket, token: path.join(dir, 'control.token'), lock: path.join(dir, 'takeover.lock') };
}

/** Creates the directory 0700, or checks that the one there is the user's own and private. */
export async function preparePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32') return;
  const st = await fs.lstat(dir);
  if (!st.isDirectory() || st.isSymbolicLink()) throw new Error(`${dir} is not a directory`);
  if (st.uid !== process.getuid?.()) throw new Error(`${dir} belongs to another user`);
  if ((st.mode & 0o077) !== 0) await fs.chmod(dir, 0o700);
}

/** The user's control secret: read, or created 0600 by the first window. */
export async function readOrCreateToken(file: string): Promise<string> {
  try {
    const handle = await fs.open(file, 'wx', 0o600);
    const token = randomBytes(32).toString('base64url');
    await handle.writeFile(token);
    await handle.close();
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (process.platform !== 'win32') {
    const st = await fs.lstat(file);
    if (!st.isFile() || st.uid !== process.getuid?.()) throw new Error(`${file} is not this user's file`);
    if ((st.mode & 0o077) !== 0) await fs.chmod(file, 0o600);
  }
  // A window that created it a moment ago may still be writing: wait for a full token.
  for (let i = 0; i < 20; i++) {
    const token = (await fs.readFile(file, 'utf8')).trim();
    if (token.length >= 32) return token;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${file} holds no secret`);
}
