/**
 * The converter's identity shift option, in a module without TensorFlow.js so that pipeline
 * files validate without loading it. The shift itself is `decodeShifted` in models/faceswap.ts.
 */
import { type ErrorCode, invalidOption } from '../errors.js';

/**
 * The default strength. 1 moves the codes' mean all the way to the target's, and it was chosen
 * before measuring, as the one value that needs no tuning.
 */
export const DEFAULT_IDENTITY_SHIFT = 1;

/** Beyond 2 the codes overshoot the target's mean by more than the whole distance between the identities. */
export const MAX_IDENTITY_SHIFT = 2;

export function resolveIdentityShift(value: unknown, option: string, code?: ErrorCode): number {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof number === 'number' && Number.isFinite(number) && number >= 0 && number <= MAX_IDENTITY_SHIFT) return number;

  // A flag's text is shown as the number it parsed to, as the other numeric flags show theirs.
  throw invalidOption(`a number from 0 to ${MAX_IDENTITY_SHIFT}`, option, typeof number === 'number' && !Number.isNaN(number) ? number : value, code);
}
