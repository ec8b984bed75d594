/**
 * The input shapes that darkroom's photo steps feed their network for one photo, so that the
 * PyTorch reference and the FLOP count see exactly the tiles the pipeline computes.
 */
import { workingDimensions } from '../src/models/colorize.js';
import { runTiled } from '../src/media/tiling.js';
import type { TileOptions } from '../src/pipeline/steps.js';

/** Mirrored border that applyStep adds before denoising (src/models/apply.ts). */
export const DENOISE_BORDER = 16;

export type PhotoStep = 'denoise' | 'colorize' | 'upscale-x2' | 'upscale-x4';

export const PHOTO_STEPS: readonly PhotoStep[] = ['denoise', 'colorize', 'upscale-x2', 'upscale-x4'];

export interface StepGeometry {
  readonly tile?: TileOptions;
  readonly workingSize?: number;
  readonly sizeMultiple: number;
}

export function stepScale(step: PhotoStep): number {
  if (step === 'upscale-x2') return 2;
  if (step === 'upscale-x4') return 4;
  return 1;
}

/**
 * Network input shapes [1, height, width, channels] for one photo of width x height. Tiled
 * steps run the real tiling with a stand-in network that records each tile, so the layout is
 * the pipeline's own and not a copy of it.
 */
export async function networkInputShapes(step: PhotoStep, width: number, height: number, geometry: StepGeometry): Promise<number[][]> {
  if (step === 'colorize') {
    const working = workingDimensions(width, height, geometry.workingSize ?? 256, geometry.sizeMultiple);
    return [[1, working.height, working.width, 1]];
  }

  const tile = geometry.tile;
  if (tile === undefined) throw new Error(`The ${step} step needs tile options`);
  const border = step === 'denoise' ? DENOISE_BORDER : 0;
  const scale = stepScale(step);
  const paddedWidth = width + 2 * border;
  const paddedHeight = height + 2 * border;

  const shapes: number[][] = [];
  await runTiled(
    { width: paddedWidth, height: paddedHeight, channels: 3, data: new Uint8Array(paddedWidth * paddedHeight * 3) },
    async (_tile, tileHeight, tileWidth) => {
      shapes.push([1, tileHeight, tileWidth, 3]);
      return new Float32Array(tileHeight * scale * tileWidth * scale * 3);
    },
    { tileSize: tile.tileSize, overlap: tile.overlap, multipleOf: geometry.sizeMultiple, scale },
  );
  return shapes;
}
