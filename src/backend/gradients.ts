/**
 * Gradients that tfjs-core 4.22 does not register. Gradients are registered per kernel name,
 * not per backend, so these serve every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's main entry point registers no gradients. tfjs-layers registers them all when it
// loads, and its dist files are the ones that Node can import.
import '@tensorflow/tfjs-layers';
import { DepthToSpace, getGradient, registerGradient } from '@tensorflow/tfjs-core';
import type { DepthToSpaceAttrs, GradConfig, NamedAttrMap } from '@tensorflow/tfjs-core';

/**
 * Gradient of DepthToSpace (NHWC, the only layout the wasm kernel supports), which is its
 * inverse, space-to-depth. DepthToSpace moves input channel (i * blockSize + j) * C + c of
 * pixel (h, w) to output pixel (h * blockSize + i, w * blockSize + j), channel c. The gradient
 * therefore reshapes dy to [N, H, blockSize, W, blockSize, C] and swaps the two middle axes back.
 */
const depthToSpaceGradient: GradConfig = {
  kernelName: DepthToSpace,
  gradFunc: (dy: tf.Tensor | tf.Tensor[], _saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const { blockSize, dataFormat } = attrs as unknown as DepthToSpaceAttrs;
    if (dataFormat !== 'NHWC') throw new Error(`The DepthToSpace gradient supports dataFormat 'NHWC' only, but received '${dataFormat}'`);
    const gradient = dy as tf.Tensor4D;
    const [batch, outHeight, outWidth, channels] = gradient.shape;
    const height = outHeight / blockSize;
    const width = outWidth / blockSize;

    return {
      x: () => {
        const split = tf.reshape(gradient, [batch, height, blockSize, width, blockSize, channels]);
        const moved = tf.transpose(split, [0, 1, 3, 2, 4, 5]);
        return tf.reshape(moved, [batch, height, width, blockSize * blockSize * channels]);
      },
    };
  },
};

/** Registers the missing gradients once per thread; later calls do nothing. */
export function registerMissingGradients(): void {
  if (getGradient(DepthToSpace) === undefined) registerGradient(depthToSpaceGradient);
}
