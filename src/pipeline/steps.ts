import { invalidOption } from '../errors.js';
import { type ColourMatch, DEFAULT_COLOUR_MATCH, DEFAULT_MASK_REGION, type MaskRegion, resolveColourMatch, resolveMaskRegion } from '../faces/blend.js';
import { DEFAULT_IDENTITY_SHIFT, resolveIdentityShift } from '../faces/identity-shift.js';
import { COLORIZE_SIZE_MULTIPLE } from '../models/colorize.js';
import { DENOISE_SIZE_MULTIPLE } from '../models/denoise.js';
import { UPSCALE_SIZE_MULTIPLE } from '../models/upscale.js';
import { DEFAULT_SCAN_OPTIONS } from '../scan/defaults.js';
import { createStepRegistry, type StepDefinition, type StepRegistry } from './registry.js';
import { expectKnownFields, expectMapping, readOptionalInteger } from './schema.js';

/** Options of a tiled photo step, resolved with defaults. */
export interface TileOptions {
  readonly tileSize: number;
  readonly overlap: number;
}

/**
 * Default tiling. `overlap` is the context each tile gets beyond the part of it that is kept:
 * neighbouring tiles share 2 x overlap pixels, so tiles advance by tileSize - 2 x overlap.
 * Blended tiles match a whole-image run when the model's receptive-field radius is at most
 * overlap / 2; the denoiser's radius is 25 pixels, and its outermost weights are tiny. With
 * 768-pixel tiles a large photo is computed about 1.3 times over (1.5 times for 1024x768), and
 * one full-resolution activation of the denoiser stays near 75 MB.
 */
export const DEFAULT_TILE_OPTIONS: TileOptions = Object.freeze({ tileSize: 768, overlap: 48 });

/**
 * Default tiling of the upscalers, in input pixels. Their receptive-field radius is 7 input
 * pixels, so an overlap of 16 matches a whole-image run. A 512-pixel tile at scale 4 makes a
 * 2048-pixel output tile, and the 48-channel activations stay near 50 MB.
 */
export const DEFAULT_UPSCALE_TILE_OPTIONS: TileOptions = Object.freeze({ tileSize: 512, overlap: 16 });

function validateTileOptions(raw: unknown, fieldPath: string, multiple: number, defaults: TileOptions = DEFAULT_TILE_OPTIONS): TileOptions {
  if (raw === undefined || raw === null) return defaults;
  const record = expectMapping(raw, fieldPath);
  expectKnownFields(record, ['tileSize', 'overlap'], fieldPath);

  const tileSize = readOptionalInteger(record.tileSize, `${fieldPath}.tileSize`, { min: 32, max: 4096, fallback: defaults.tileSize });
  if (tileSize % multiple !== 0) throw invalidOption(`a multiple of ${multiple}`, `${fieldPath}.tileSize`, tileSize, 'INVALID_PIPELINE');
  const overlap = readOptionalInteger(record.overlap, `${fieldPath}.overlap`, {
    min: 0,
    max: tileSize / 2 - 1,
    fallback: Math.min(defaults.overlap, tileSize / 2 - 1),
  });
  return Object.freeze({ tileSize, overlap });
}

/** Options of the colorize step, resolved with defaults. */
export interface ColorizeStepOptions {
  /** Long side in pixels of the image that the model receives. Chroma is scaled up from it. */
  readonly workingSize: number;
}

/** The working size that the colorizer trains at by default, so inference matches training. */
export const DEFAULT_COLORIZE_OPTIONS: ColorizeStepOptions = Object.freeze({ workingSize: 256 });

function validateColorizeOptions(raw: unknown, fieldPath: string): ColorizeStepOptions {
  if (raw === undefined || raw === null) return DEFAULT_COLORIZE_OPTIONS;
  const record = expectMapping(raw, fieldPath);
  expectKnownFields(record, ['workingSize'], fieldPath);

  const workingSize = readOptionalInteger(record.workingSize, `${fieldPath}.workingSize`, { min: 32, max: 2048, fallback: DEFAULT_COLORIZE_OPTIONS.workingSize });
  if (workingSize % COLORIZE_SIZE_MULTIPLE !== 0) {
    throw invalidOption(`a multiple of ${COLORIZE_SIZE_MULTIPLE}`, `${fieldPath}.workingSize`, workingSize, 'INVALID_PIPELINE');
  }
  return Object.freeze({ workingSize });
}

export const DENOISE_STEP: StepDefinition = {
  name: 'denoise',
  description: 'removes noise from photos with a residual convolutional autoencoder (blind, sigma 0-50)',
  defaultModel: 'models/denoise',
  trainArguments: 'denoise',
  validateOptions: (raw, fieldPath) => ({ ...validateTileOptions(raw, fieldPath, DENOISE_SIZE_MULTIPLE) }),
};

export const COLORIZE_STEP: StepDefinition = {
  name: 'colorize',
  description: 'colours black-and-white photos: predicts Lab chroma from lightness and keeps the full-resolution lightness',
  defaultModel: 'models/colorize',
  trainArguments: 'colorize',
  validateOptions: (raw, fieldPath) => ({ ...validateColorizeOptions(raw, fieldPath) }),
};

function upscaleStep(scale: 2 | 4): StepDefinition {
  return {
    name: `upscale-x${scale}`,
    description: `enlarges photos ${scale} times per side with a sub-pixel convolution network`,
    defaultModel: `models/upscale-x${scale}`,
    trainArguments: `upscale --scale ${scale}`,
    validateOptions: (raw, fieldPath) => ({ ...validateTileOptions(raw, fieldPath, UPSCALE_SIZE_MULTIPLE, DEFAULT_UPSCALE_TILE_OPTIONS) }),
  };
}

export const UPSCALE_X2_STEP = upscaleStep(2);
export const UPSCALE_X4_STEP = upscaleStep(4);

/** Options of the video-anomaly step, resolved with defaults. */
export interface VideoScanStepOptions {
  /** Overrides the model's calibrated threshold when set. */
  readonly threshold?: number;
  readonly minSegmentFrames: number;
  readonly mergeGapFrames: number;
  readonly thumbnailWidth: number;
}

function validateVideoScanOptions(raw: unknown, fieldPath: string): VideoScanStepOptions {
  const record = raw === undefined || raw === null ? {} : expectMapping(raw, fieldPath);
  expectKnownFields(record, ['threshold', 'minSegmentFrames', 'mergeGapFrames', 'thumbnailWidth'], fieldPath);

  const threshold = record.threshold;
  if (threshold !== undefined && threshold !== null && (typeof threshold !== 'number' || !(threshold > 0) || !Number.isFinite(threshold))) {
    throw invalidOption('a positive number', `${fieldPath}.threshold`, threshold, 'INVALID_PIPELINE');
  }
  return Object.freeze({
    ...(typeof threshold === 'number' ? { threshold } : {}),
    minSegmentFrames: readOptionalInteger(record.minSegmentFrames, `${fieldPath}.minSegmentFrames`, { min: 1, max: 1_000_000, fallback: DEFAULT_SCAN_OPTIONS.minSegmentFrames }),
    mergeGapFrames: readOptionalInteger(record.mergeGapFrames, `${fieldPath}.mergeGapFrames`, { min: 0, max: 1_000_000, fallback: DEFAULT_SCAN_OPTIONS.mergeGapFrames }),
    thumbnailWidth: readOptionalInteger(record.thumbnailWidth, `${fieldPath}.thumbnailWidth`, { min: 16, max: 4096, fallback: DEFAULT_SCAN_OPTIONS.thumbnailWidth }),
  });
}

export const VIDEO_ANOMALY_STEP: StepDefinition = {
  name: 'video-anomaly',
  description: 'scans videos for anomalous frames with a ConvLSTM autoencoder and writes scores, a plot, thumbnails and a report',
  defaultModel: 'models/video-anomaly',
  trainArguments: 'video-anomaly',
  media: 'video',
  validateOptions: (raw, fieldPath) => ({ ...validateVideoScanOptions(raw, fieldPath) }),
};

/** Options of the generate step, resolved with defaults; a request file chooses within them. */
export interface GenerateStepOptions {
  /** Images made for a request that gives no count. */
  readonly count: number;
  /** The largest count a request may ask for. */
  readonly maxCount: number;
  readonly batchSize: number;
}

function validateGenerateOptions(raw: unknown, fieldPath: string): GenerateStepOptions {
  const record = raw === undefined || raw === null ? {} : expectMapping(raw, fieldPath);
  expectKnownFields(record, ['count', 'maxCount', 'batchSize'], fieldPath);
  const maxCount = readOptionalInteger(record.maxCount, `${fieldPath}.maxCount`, { min: 1, max: 10_000_000, fallback: 100_000 });
  return Object.freeze({
    count: readOptionalInteger(record.count, `${fieldPath}.count`, { min: 1, max: maxCount, fallback: Math.min(1000, maxCount) }),
    maxCount,
    batchSize: readOptionalInteger(record.batchSize, `${fieldPath}.batchSize`, { min: 1, max: 4096, fallback: 256 }),
  });
}

export const GENERATE_STEP: StepDefinition = {
  name: 'generate',
  description: 'writes a synthetic image dataset from a VAE or GAN for each request file (JSON or YAML: count, class, seed)',
  defaultModel: 'models/gan',
  modelTasks: ['vae', 'gan'],
  trainArguments: 'gan',
  media: 'request',
  validateOptions: (raw, fieldPath) => ({ ...validateGenerateOptions(raw, fieldPath) }),
};

/** Options of the faceswap step, resolved with defaults. */
export interface FaceSwapStepOptions {
  readonly to: 'a' | 'b';
  readonly label: boolean;
  readonly minSize: number;
  readonly mask: MaskRegion;
  readonly colourMatch: ColourMatch;
  readonly identityShift: number;
}

function validateFaceSwapOptions(raw: unknown, fieldPath: string): FaceSwapStepOptions {
  const record = raw === undefined || raw === null ? {} : expectMapping(raw, fieldPath);
  expectKnownFields(record, ['to', 'label', 'minSize', 'mask', 'colourMatch', 'identityShift'], fieldPath);

  // No default for `to`: which way a swap goes is the one thing a pipeline file must say.
  if (record.to !== 'a' && record.to !== 'b') throw invalidOption('a or b', `${fieldPath}.to`, record.to, 'INVALID_PIPELINE');
  const label = record.label ?? false;
  if (typeof label !== 'boolean') throw invalidOption('true or false', `${fieldPath}.label`, label, 'INVALID_PIPELINE');
  return Object.freeze({
    to: record.to,
    label,
    minSize: readOptionalInteger(record.minSize, `${fieldPath}.minSize`, { min: 1, max: 100_000, fallback: 40 }),
    mask: resolveMaskRegion(record.mask ?? DEFAULT_MASK_REGION, `${fieldPath}.mask`, 'INVALID_PIPELINE'),
    colourMatch: resolveColourMatch(record.colourMatch ?? DEFAULT_COLOUR_MATCH, `${fieldPath}.colourMatch`, 'INVALID_PIPELINE'),
    identityShift: resolveIdentityShift(record.identityShift ?? DEFAULT_IDENTITY_SHIFT, `${fieldPath}.identityShift`, 'INVALID_PIPELINE'),
  });
}

export const FACESWAP_STEP: StepDefinition = {
  name: 'faceswap',
  description: 'replaces the faces of one identity with the other in photos and videos, with a face-swap autoencoder; outputs are marked as synthetic',
  defaultModel: 'models/faceswap',
  trainArguments: 'faceswap',
  trainData: '--a DIR --b DIR',
  media: 'photo-and-video',
  validateOptions: (raw, fieldPath) => ({ ...validateFaceSwapOptions(raw, fieldPath) }),
};

/** Creates the registry of steps that pipeline files can use; new steps are added to its list. */
export function defaultStepRegistry(): StepRegistry {
  return createStepRegistry([DENOISE_STEP, COLORIZE_STEP, UPSCALE_X2_STEP, UPSCALE_X4_STEP, VIDEO_ANOMALY_STEP, GENERATE_STEP, FACESWAP_STEP]);
}
