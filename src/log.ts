/**
 * A small levelled logger for the CLI and long-running commands. Everything goes to stderr so
 * that stdout stays free for tables and machine-readable output. `debug` is off unless
 * DARKROOM_LOG=debug or --verbose turns it on.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  readonly level: LogLevel;
}

function parseLevel(value: string | undefined): LogLevel | undefined {
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  return lower in ORDER ? (lower as LogLevel) : undefined;
}

let currentLevel: LogLevel = parseLevel(process.env.DARKROOM_LOG) ?? 'info';

export function setLogLevel(level: LogLevel): void {
  currentLevel = level;
}

export function getLogLevel(): LogLevel {
  return currentLevel;
}

/** Creates a logger whose lines carry a scope, e.g. "[watch] ...". */
export function createLogger(scope: string, write: (line: string) => void = (line) => process.stderr.write(line + '\n')): Logger {
  const emit = (level: LogLevel, message: string): void => {
    if (ORDER[level] < ORDER[currentLevel]) return;
    const prefix = level === 'info' ? '' : `${level}: `;
    write(`[${scope}] ${prefix}${message}`);
  };
  return {
    debug: (message) => emit('debug', message),
    info: (message) => emit('info', message),
    warn: (message) => emit('warn', message),
    error: (message) => emit('error', message),
    get level() {
      return currentLevel;
    },
  };
}
