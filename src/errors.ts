/**
 * Errors that darkroom raises on purpose. `code` lets the CLI and the failed-folder
 * reports tell the kinds apart without parsing messages.
 */
export type ErrorCode =
  | 'INVALID_OPTION'
  | 'INVALID_PIPELINE'
  | 'INVALID_INPUT'
  | 'UNSUPPORTED_FORMAT'
  | 'TOO_LARGE'
  | 'NOT_WRITABLE'
  | 'MODEL_NOT_FOUND'
  | 'BACKEND_UNAVAILABLE'
  | 'USAGE'
  | 'INTERRUPTED'
  | 'INTERNAL';

export class DarkroomError extends Error {
  readonly code: ErrorCode;
  readonly file?: string;

  constructor(code: ErrorCode, message: string, options: { file?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DarkroomError';
    this.code = code;
    this.file = options.file;
  }
}

/** Renders a received value for an error message: strings quoted, objects as JSON, long values cut. */
export function describeValue(value: unknown): string {
  let text: string;
  if (typeof value === 'string') {
    text = JSON.stringify(value);
  } else if (value === undefined || typeof value === 'number' || typeof value === 'boolean' || value === null) {
    text = String(value);
  } else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Builds every option validation error in one shape:
 * "Expected <what> for <option> but received <value>".
 */
export function invalidOption(what: string, option: string, value: unknown, code: ErrorCode = 'INVALID_OPTION'): DarkroomError {
  return new DarkroomError(code, `Expected ${what} for ${option} but received ${describeValue(value)}`);
}
