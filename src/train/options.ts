import { invalidOption } from '../errors.js';

/** Options shared by every `darkroom train` task, resolved and frozen once. */
export interface CommonTrainOptions {
  readonly data: string;
  readonly out: string;
  readonly epochs: number;
  readonly stepsPerEpoch: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly validationFraction: number;
  readonly seed: number;
  readonly resume: boolean;
  /** Start over even when the output folder already contains a model or checkpoint. */
  readonly overwrite: boolean;
  /** A model folder whose weights training starts from instead of random ones (fine-tuning). */
  readonly init?: string;
}

export type RawOptions = Readonly<Record<string, unknown>>;

/** Reads an integer option in [min, max], accepting numeric strings as the CLI passes them. */
export function readInteger(raw: RawOptions, key: string, fallback: number, min: number, max: number, flag = `--${kebab(key)}`): number {
  const value = raw[key] ?? fallback;
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    throw invalidOption(`an integer from ${min} to ${max}`, flag, reportable(value, number));
  }
  return number;
}

/** Reads a number option in [min, max]. */
export function readNumber(raw: RawOptions, key: string, fallback: number, min: number, max: number, flag = `--${kebab(key)}`): number {
  const value = raw[key] ?? fallback;
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isFinite(number) || number < min || number > max) {
    throw invalidOption(`a number from ${min} to ${max}`, flag, reportable(value, number));
  }
  return number;
}

/** Shows a numeric flag as the number it parsed to, and anything else as received. */
function reportable(value: unknown, parsed: unknown): unknown {
  return typeof parsed === 'number' && !Number.isNaN(parsed) ? parsed : value;
}

export function readPath(raw: RawOptions, key: string, flag = `--${kebab(key)}`): string {
  const value = raw[key];
  if (typeof value !== 'string' || value.trim() === '') throw invalidOption('a folder path', flag, value);
  return value;
}

export function readBoolean(raw: RawOptions, key: string, fallback: boolean, flag = `--${kebab(key)}`): boolean {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'boolean') throw invalidOption('true or false', flag, value);
  return value;
}

export function resolveCommonTrainOptions(raw: RawOptions, defaults: { epochs: number; stepsPerEpoch: number; batchSize: number; learningRate: number }): CommonTrainOptions {
  return {
    data: readPath(raw, 'data'),
    out: readPath(raw, 'out'),
    epochs: readInteger(raw, 'epochs', defaults.epochs, 1, 100_000),
    stepsPerEpoch: readInteger(raw, 'stepsPerEpoch', defaults.stepsPerEpoch, 1, 1_000_000),
    batchSize: readInteger(raw, 'batchSize', defaults.batchSize, 1, 1024),
    // Fine-tuning at the rate that trains from scratch undid a trained denoiser in three steps.
    learningRate: readNumber(raw, 'learningRate', raw.init === undefined ? defaults.learningRate : defaults.learningRate / 10, 1e-7, 1),
    validationFraction: readNumber(raw, 'validationFraction', 0.15, 0, 0.9),
    seed: readInteger(raw, 'seed', 1, 0, 2 ** 31 - 1),
    resume: readBoolean(raw, 'resume', false),
    overwrite: readBoolean(raw, 'overwrite', false),
    ...(raw.init === undefined ? {} : { init: readPath(raw, 'init') }),
  };
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}
