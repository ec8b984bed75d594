import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { tinyFaceSwapMetadata } from './helpers/faceswap.js';
import { buildFaceSwap, decodeAs, type FaceSwapMetadata, loadFaceSwap, saveFaceSwap, validateFaceSwapArchitecture } from '../src/models/faceswap.js';

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
