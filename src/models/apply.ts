import * as tf from '@tensorflow/tfjs-core';

import { DarkroomError } from '../errors.js';
import { cropBorder, padReflect } from '../media/border.js';
import { runTiled } from '../media/tiling.js';
import type { TileOptions } from '../pipeline/steps.js';
import { denoiseBatch } from './denoise.js';
import type { LoadedModel } from './storage.js';

/**
 * Mirrored border added around a photo before denoising, in pixels. Without it the outermost
 * rows and columns had about twice the error of the interior, because 'same' convolutions pad
 * with zeros there.
 */
const DENOISE_BORDER = 16;

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
      const paddedWidth = image.width + 2 * DENOISE_BORDER;
      const paddedHeight = image.height + 2 * DENOISE_BORDER;
      const padded = padReflect(image.rgb, image.width, image.height, 3, DENOISE_BORDER);
      const rgb = await runTiled(
        { width: paddedWidth, height: paddedHeight, channels: 3, data: padded },
        async (tile, tileHeight, tileWidth) => {
          const input = tf.tensor4d(tile, [1, tileHeight, tileWidth, 3]);
          const output = denoiseBatch(loaded.model, input);
          const values = (await output.data()) as Float32Array;
          tf.dispose([input, output]);
          return values;
        },
        { tileSize: options.tileSize, overlap: options.overlap, multipleOf: loaded.metadata.sizeMultiple },
      );
      return { width: image.width, height: image.height, rgb: cropBorder(rgb, paddedWidth, paddedHeight, 3, DENOISE_BORDER) };
    }
    default:
      throw new DarkroomError('INVALID_PIPELINE', `No runner for the step "${step}"`);
  }
}
