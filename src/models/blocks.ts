import * as tfl from '@tensorflow/tfjs-layers';

import { invalidOption } from '../errors.js';

/** Building blocks shared by the convolutional autoencoders. */

export type Initializer = ReturnType<typeof tfl.initializers.heNormal>;

/**
 * Returns a factory of He-normal initialisers with consecutive seeds, so that a training seed
 * fixes the initial weights. Without a seed every initialiser draws fresh random weights.
 */
export function seededInitializers(seed: number | undefined): () => Initializer {
  let next = seed;
  return () => tfl.initializers.heNormal(next === undefined ? {} : { seed: next++ });
}

/** Creates a 3x3 'same' convolution with ReLU. */
export function conv(filters: number, name: string, initializer: () => Initializer, strides = 1): tfl.layers.Layer {
  return tfl.layers.conv2d({ filters, kernelSize: 3, strides, padding: 'same', activation: 'relu', kernelInitializer: initializer(), name });
}

/** Creates a 3x3 stride-2 transposed convolution with ReLU, doubling height and width. */
export function upsample(filters: number, name: string, initializer: () => Initializer): tfl.layers.Layer {
  return tfl.layers.conv2dTranspose({ filters, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: initializer(), name });
}

/** Merges layer widths over their defaults and checks that each is an integer from 1 to 512. */
export function resolveLayerWidths<T extends object>(defaults: T, raw: Partial<T>): Readonly<T> {
  const resolved = { ...defaults, ...raw };
  for (const [key, value] of Object.entries(resolved)) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 512) {
      throw invalidOption('an integer from 1 to 512', `architecture.${key}`, value);
    }
  }
  return Object.freeze(resolved);
}
