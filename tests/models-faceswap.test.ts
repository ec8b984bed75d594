import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { tinyFaceSwapMetadata } from './helpers/faceswap.js';
import { buildFaceSwap, decodeAs, decodeShifted, encodeLatent, type FaceSwapMetadata, latentMeans, loadFaceSwap, saveFaceSwap, validateFaceSwapArchitecture, validLatentMeans } from '../src/models/faceswap.js';

let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-faceswap-model-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const TINY = validateFaceSwapArchitecture({ size: 64, filters: 4, latentDim: 8 });

const metadata = (): FaceSwapMetadata => ({ ...tinyFaceSwapMetadata(), architecture: TINY });

describe('face-swap autoencoder pair', () => {
  it('shares one encoder and decodes crops as either identity at the crop size', () => {
    const networks = buildFaceSwap(TINY, 3);
    const crops = tf.randomUniform([2, 64, 64, 3], 0, 1, 'float32', 1) as tf.Tensor4D;

    const asA = decodeAs(networks, crops, 'a');
    const asB = decodeAs(networks, crops, 'b');

    expect(asA.shape).toEqual([2, 64, 64, 3]);
    expect(asB.shape).toEqual([2, 64, 64, 3]);
    const difference = tf.max(tf.abs(tf.sub(asA, asB))).dataSync()[0];
    expect(difference).toBeGreaterThan(1e-4);
    const values = asB.dataSync();
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThanOrEqual(1);
    tf.dispose([crops, asA, asB]);
  });

  it('builds 128-pixel crops with the same number of stages', () => {
    const networks = buildFaceSwap({ ...TINY, size: 128 }, 3);

    expect(networks.encoder.outputs[0].shape).toEqual([null, 16, 16, 16]);
    expect(networks.b.outputs[0].shape).toEqual([null, 128, 128, 3]);
  });

  it('saves and loads the three networks with the same outputs', async () => {
    const networks = buildFaceSwap(TINY, 3);
    await saveFaceSwap(path.join(dir, 'model'), networks, metadata());
    const loaded = await loadFaceSwap(path.join(dir, 'model'));
    const crops = tf.randomUniform([1, 64, 64, 3], 0, 1, 'float32', 2) as tf.Tensor4D;

    expect(loaded.metadata.identities).toEqual({ a: 'anna', b: 'bruno' });
    const before = decodeAs(networks, crops, 'b').dataSync();
    const after = decodeAs(loaded.networks, crops, 'b').dataSync();
    let largest = 0;
    for (let i = 0; i < before.length; i++) largest = Math.max(largest, Math.abs(before[i] - after[i]));
    expect(largest).toBeLessThan(1e-6);
  });

  it('rejects other crop sizes with the shared message', () => {
    expect(() => validateFaceSwapArchitecture({ size: 96 })).toThrow('Expected 64 or 128 for --size but received 96');
  });
});

describe('identity shift', () => {
  const largestDifference = (p: tf.Tensor, q: tf.Tensor): number => tf.max(tf.abs(tf.sub(p, q))).dataSync()[0];
  const randomVector = (seed: number): number[] => Array.from(tf.randomNormal([TINY.latentDim], 0, 1, 'float32', seed).dataSync());

  it('equal means give the plain swap', () => {
    const networks = buildFaceSwap(TINY, 3);
    const crops = tf.randomUniform([2, 64, 64, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const mean = randomVector(5);

    const shifted = decodeShifted(networks, crops, 'b', { a: mean, b: mean }, 1);
    const plain = decodeAs(networks, crops, 'b');

    expect(largestDifference(shifted, plain)).toBeLessThan(1e-6);
    tf.dispose([crops, shifted, plain]);
  });

  it('shifts codes like a latent bias', () => {
    const networks = buildFaceSwap(TINY, 3);
    const biased = buildFaceSwap(TINY, 3);
    const means = { a: randomVector(6), b: randomVector(7) };
    const strength = 0.5;
    // Adding a constant to every code equals adding it to the dense layer's bias, an independent way to the same swap.
    const latent = biased.encoder.getLayer('latent');
    const [kernel, bias] = latent.getWeights();
    const shift = tf.tensor1d(means.a.map((value, index) => strength * (value - means.b[index])));
    latent.setWeights([kernel, tf.add(bias, shift)]);
    const crops = tf.randomUniform([3, 64, 64, 3], 0, 1, 'float32', 8) as tf.Tensor4D;

    const shifted = decodeShifted(networks, crops, 'a', means, strength);
    const expected = decodeAs(biased, crops, 'a');
    const unshifted = decodeAs(networks, crops, 'a');

    expect(largestDifference(shifted, expected)).toBeLessThan(1e-5);
    expect(largestDifference(shifted, unshifted)).toBeGreaterThan(1e-3);
    tf.dispose([shift, crops, shifted, expected, unshifted]);
  });

  it('averages codes over uneven batches', () => {
    const networks = buildFaceSwap(TINY, 3);
    const pixels = 64 * 64 * 3;
    const crops = { a: tf.randomUniform([7 * pixels], 0, 1, 'float32', 9).dataSync() as Float32Array, b: tf.randomUniform([2 * pixels], 0, 1, 'float32', 10).dataSync() as Float32Array };

    const means = latentMeans(networks, crops, 64, 3);
    const all = encodeLatent(networks, tf.tensor4d(crops.a, [7, 64, 64, 3]));
    const expected = tf.mean(all, 0).dataSync();

    expect(means.a).toHaveLength(TINY.latentDim);
    means.a.forEach((value, index) => expect(value).toBeCloseTo(expected[index], 5));
    expect(means.b).toHaveLength(TINY.latentDim);
    expect(() => latentMeans(networks, { a: crops.a.subarray(0, 100), b: crops.b }, 64)).toThrow('Expected whole 64x64 RGB crops to average latent codes over but received 100 values');
    all.dispose();
  });

  it('validates latent means', () => {
    const good = { a: randomVector(11), b: randomVector(12) };

    expect(validLatentMeans(good, TINY.latentDim)).toEqual(good);
    expect(validLatentMeans(undefined, TINY.latentDim)).toBeUndefined();
    expect(validLatentMeans({ a: good.a }, TINY.latentDim)).toBeUndefined();
    expect(validLatentMeans({ ...good, b: good.b.slice(1) }, TINY.latentDim)).toBeUndefined();
    expect(validLatentMeans({ ...good, b: [...good.b.slice(1), Number.NaN] }, TINY.latentDim)).toBeUndefined();
    expect(validLatentMeans({ ...good, a: [...good.a.slice(1), '1'] }, TINY.latentDim)).toBeUndefined();
  });
});
