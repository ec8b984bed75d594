import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { registerMissingGradients } from '../src/backend/gradients.js';
import { initBackend } from '../src/backend/select.js';

beforeAll(async () => {
  await initBackend('wasm');
  registerMissingGradients();
});

/** Space-to-depth by index arithmetic, the reference for the DepthToSpace gradient. */
function spaceToDepthReference(values: Float32Array, [batch, height, width, channels]: number[], block: number): Float32Array {
  const outHeight = height / block;
  const outWidth = width / block;
  const outChannels = channels * block * block;
  const out = new Float32Array(values.length);
  for (let n = 0; n < batch; n++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < channels; c++) {
          const i = Math.floor(y / block);
          const j = Math.floor(x / block);
          const depth = ((y % block) * block + (x % block)) * channels + c;
          out[((n * outHeight + i) * outWidth + j) * outChannels + depth] = values[((n * height + y) * width + x) * channels + c];
        }
      }
    }
  }
  return out;
}

async function depthToSpaceGradient(backend: string, block: number): Promise<{ gradient: Float32Array; reference: Float32Array }> {
  await tf.setBackend(backend);
  const x = tf.randomNormal([2, 3, 5, 3 * block * block], 0, 1, 'float32', 4);
  const weights = tf.randomNormal([2, 3 * block, 5 * block, 3], 0, 1, 'float32', 5);
  const gradient = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.depthToSpace(input as tf.Tensor4D, block), weights)))(x);
  const result = { gradient: (await gradient.data()) as Float32Array, reference: spaceToDepthReference((await weights.data()) as Float32Array, weights.shape, block) };
  tf.dispose([x, weights, gradient]);
  return result;
}

describe('DepthToSpace gradient', () => {
  for (const block of [2, 4]) {
    it(`matches space-to-depth on wasm and cpu (block ${block})`, async () => {
      const wasm = await depthToSpaceGradient('wasm', block);
      const cpu = await depthToSpaceGradient('cpu', block);
      await tf.setBackend('wasm');

      expect(Array.from(wasm.gradient)).toEqual(Array.from(wasm.reference));
      expect(Array.from(cpu.gradient)).toEqual(Array.from(cpu.reference));
      expect(Array.from(wasm.gradient)).toEqual(Array.from(cpu.gradient));
    });
  }
});

describe('DepthToSpace gradient of a squared norm', () => {
  it('is twice the input', async () => {
    const x = tf.randomNormal([1, 3, 5, 12], 0, 1, 'float32', 8);
    const gradient = tf.grad((input: tf.Tensor) => tf.sum(tf.square(tf.depthToSpace(input as tf.Tensor4D, 2))))(x);
    const difference = await tf.max(tf.abs(tf.sub(gradient, tf.mul(x, 2)))).data();

    expect(difference[0]).toBe(0);
  });
});
