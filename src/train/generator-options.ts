import { DarkroomError, invalidOption } from '../errors.js';
import type { GeneratorKind } from '../models/generator-storage.js';
import { GENERATOR_SIZE_MULTIPLE } from '../models/vae.js';
import { type RawOptions, readBoolean, readInteger, readNumber, readPath } from './options.js';

/** Options of `darkroom train vae|gan`, resolved and frozen once. */
export interface GeneratorTrainOptions {
  readonly kind: GeneratorKind;
  readonly data: string;
  readonly out: string;
  readonly epochs: number;
  /** Steps per epoch; undefined means one pass over the training images. */
  readonly stepsPerEpoch: number | undefined;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly imageSize: number;
  readonly channels: 1 | 3 | 'auto';
  /** VAE: latent size; GAN: noise size. */
  readonly latentDim: number;
  /** Weight of the KL term of the VAE loss. */
  readonly beta: number;
  readonly validationFraction: number;
  readonly maxImagesPerClass: number | undefined;
  readonly seed: number;
  readonly resume: boolean;
  readonly overwrite: boolean;
  /** Layer widths; the CLI always uses the defaults, tests pass smaller ones. */
  readonly filters: readonly [number, number, number] | undefined;
}

/** Flags, in camelCase, that `darkroom train vae|gan` reads. */
export const GENERATOR_FLAGS: Readonly<Record<GeneratorKind, readonly string[]>> = Object.freeze({
  vae: ['imageSize', 'channels', 'latentDim', 'beta', 'maxImagesPerClass'],
  gan: ['imageSize', 'channels', 'latentDim', 'maxImagesPerClass'],
});

const DEFAULTS: Readonly<Record<GeneratorKind, { epochs: number; learningRate: number; latentDim: number }>> = Object.freeze({
  vae: { epochs: 10, learningRate: 1e-3, latentDim: 16 },
  // Adam at 2e-4 with beta1 0.5 is the DCGAN paper's setting; the default 0.9 oscillates.
  gan: { epochs: 10, learningRate: 2e-4, latentDim: 64 },
});

const CHANNELS: Readonly<Record<'auto' | 'grey' | 'colour', 1 | 3 | 'auto'>> = { auto: 'auto', grey: 1, colour: 3 };

export function resolveGeneratorTrainOptions(kind: GeneratorKind, raw: RawOptions): Readonly<GeneratorTrainOptions> {
  const defaults = DEFAULTS[kind];
  const imageSize = readInteger(raw, 'imageSize', 32, 8, 256);
  if (imageSize % GENERATOR_SIZE_MULTIPLE !== 0) throw invalidOption(`a multiple of ${GENERATOR_SIZE_MULTIPLE} from 8 to 256`, '--image-size', imageSize);
  const channels = raw.channels ?? 'auto';
  if (channels !== 'auto' && channels !== 'grey' && channels !== 'colour') throw invalidOption('auto, grey or colour', '--channels', channels);
  const filters = raw.filters as readonly [number, number, number] | undefined;
  if (filters !== undefined && !(Array.isArray(filters) && filters.length === 3 && filters.every((value) => Number.isInteger(value) && value > 0))) {
    throw new DarkroomError('INVALID_OPTION', `Expected three positive integers for filters but received ${JSON.stringify(filters)}`);
  }

  return Object.freeze({
    kind,
    data: readPath(raw, 'data'),
    out: readPath(raw, 'out'),
    epochs: readInteger(raw, 'epochs', defaults.epochs, 1, 100_000),
    stepsPerEpoch: raw.stepsPerEpoch === undefined ? undefined : readInteger(raw, 'stepsPerEpoch', 1, 1, 1_000_000),
    batchSize: readInteger(raw, 'batchSize', 64, 2, 1024),
    learningRate: readNumber(raw, 'learningRate', defaults.learningRate, 1e-7, 1),
    imageSize,
    channels: CHANNELS[channels],
    latentDim: readInteger(raw, 'latentDim', defaults.latentDim, 2, 1024),
    beta: readNumber(raw, 'beta', 1, 0, 100),
    validationFraction: readNumber(raw, 'validationFraction', 0.05, 0, 0.5),
    maxImagesPerClass: raw.maxImagesPerClass === undefined ? undefined : readInteger(raw, 'maxImagesPerClass', 1, 1, 10_000_000),
    seed: readInteger(raw, 'seed', 1, 0, 2 ** 31 - 1),
    resume: readBoolean(raw, 'resume', false),
    overwrite: readBoolean(raw, 'overwrite', false),
    filters,
  });
}
