import { invalidOption } from '../errors.js';
import { DENOISE_SIZE_MULTIPLE } from '../models/denoise.js';
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

function validateTileOptions(raw: unknown, fieldPath: string, multiple: number): TileOptions {
  if (raw === undefined || raw === null) return DEFAULT_TILE_OPTIONS;
  const record = expectMapping(raw, fieldPath);
  expectKnownFields(record, ['tileSize', 'overlap'], fieldPath);

  const tileSize = readOptionalInteger(record.tileSize, `${fieldPath}.tileSize`, { min: 32, max: 4096, fallback: DEFAULT_TILE_OPTIONS.tileSize });
  if (tileSize % multiple !== 0) throw invalidOption(`a multiple of ${multiple}`, `${fieldPath}.tileSize`, tileSize, 'INVALID_PIPELINE');
  const overlap = readOptionalInteger(record.overlap, `${fieldPath}.overlap`, {
    min: 0,
    max: tileSize / 2 - 1,
    fallback: Math.min(DEFAULT_TILE_OPTIONS.overlap, tileSize / 2 - 1),
  });
  return Object.freeze({ tileSize, overlap });
}

export const DENOISE_STEP: StepDefinition = {
  name: 'denoise',
  description: 'removes noise from photos with a residual convolutional autoencoder (blind, sigma 0-50)',
  defaultModel: 'models/denoise',
  validateOptions: (raw, fieldPath) => ({ ...validateTileOptions(raw, fieldPath, DENOISE_SIZE_MULTIPLE) }),
};

/** Creates the registry of steps that pipeline files can use; new steps are added to its list. */
export function defaultStepRegistry(): StepRegistry {
  return createStepRegistry([DENOISE_STEP]);
}
