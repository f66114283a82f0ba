/**
 * Flow-control sizes of the tunnel, the same at both ends. They bound memory: an end buffers at most one
 * stream window per stream and one connection window in all for a reader that is slow to take its bytes.
 */
import type { Settings } from 'node:http2';

/** Per stream: what one session may have in flight one way before the peer's reader catches up. */
export const STREAM_WINDOW = 1024 * 1024;
/** Per tunnel, both ways: the sum over all streams. */
export const TUNNEL_WINDOW = 16 * 1024 * 1024;
/** Larger DATA frames than HTTP/2's 16 KB default: fewer frames (and WebSocket messages) per megabyte. */
export const MAX_FRAME = 64 * 1024;

export const TUNNEL_SETTINGS: Settings = {
  enablePush: false,
  initialWindowSize: STREAM_WINDOW,
  maxFrameSize: MAX_FRAME,
  maxConcurrentStreams: 4096,
  maxHeaderListSize: 16 * 1024,
};

/** A WebSocket message carries one write of the HTTP/2 session: frames, coalesced. */
export const WS_MAX_PAYLOAD = 8 * 1024 * 1024;
