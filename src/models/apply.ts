import * as tf from '@tensorflow/tfjs-core';

import { DarkroomError } from '../errors.js';
import { runTiled } from '../media/tiling.js';
import type { TileOptions } from '../pipeline/steps.js';
import { denoiseBatch } from './denoise.js';
import type { LoadedModel } from './storage.js';

/** An 8-bit RGB image, HWC. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

/**
 * Applies one pipeline step to an image in memory, tile by tile. Steps chain by feeding one
 * step's RgbImage to the next, without encoding in between.
 */
export async function applyStep(step: string, loaded: LoadedModel, image: RgbImage, options: TileOptions): Promise<RgbImage> {
  if (loaded.metadata.task !== step) {
    throw new DarkroomError('MODEL_NOT_FOUND', `The model in ${loaded.dir} was trained for "${loaded.metadata.task}", not for the "${step}" step`);
  }

  switch (step) {
    case 'denoise': {
      const rgb = await runTiled(
        { width: image.width, height: image.height, channels: 3, data: image.rgb },
        async (tile, tileHeight, tileWidth) => {
          const input = tf.tensor4d(tile, [1, tileHeight, tileWidth, 3]);
          const output = denoiseBatch(loaded.model, input);
          const values = (await output.data()) as Float32Array;
          tf.dispose([input, output]);
          return values;
        },
        { tileSize: options.tileSize, overlap: options.overlap, multipleOf: loaded.metadata.sizeMultiple },
      );
      return { width: image.width, height: image.height, rgb };
    }
    default:
      throw new DarkroomError('INVALID_PIPELINE', `No runner for the step "${step}"`);
  }
}
