/** The engine logs through this interface; the CLI prints, the extension writes to an output channel. */
export interface Logger {
  /** false when debug lines are dropped: hot paths then skip building them. Undefined means "maybe". */
  readonly debugEnabled?: boolean;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = {
  debugEnabled: false,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
