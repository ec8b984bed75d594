import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { createLogger } from '../src/log.js';
import { buildColorizer } from '../src/models/colorize.js';
import { buildDenoiser } from '../src/models/denoise.js';
import { loadModel } from '../src/models/storage.js';
import { COLORIZE_TRAINING } from '../src/train/colorize.js';
import { DataParallelTrainer, shardSizes } from '../src/train/data-parallel.js';
import { meanSquaredError } from '../src/train/loop.js';
import { trainTask } from '../src/train/trainer.js';
import { writeSyntheticPhoto } from './helpers/images.js';
import { TINY_ARCHITECTURE, TINY_COLORIZE_ARCHITECTURE } from './helpers/models.js';

let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-data-parallel-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function batches(count: number, size: number): { inputs: tf.Tensor; targets: tf.Tensor }[] {
  return Array.from({ length: count }, (_, index) => ({
    inputs: tf.randomUniform([size, 16, 16, 3], 0, 1, 'float32', 10 + index),
    targets: tf.randomUniform([size, 16, 16, 3], 0, 1, 'float32', 100 + index),
  }));
}

function weightsOf(model: tfl.LayersModel): Float32Array[] {
  return model.trainableWeights.map((weight) => new Float32Array(weight.read().dataSync()));
}

function largestDifference(a: Float32Array[], b: Float32Array[]): number {
  let largest = 0;
  a.forEach((values, index) => values.forEach((value, i) => (largest = Math.max(largest, Math.abs(value - b[index][i])))));
  return largest;
}

describe('shard sizes', () => {
  it('split a batch as evenly as possible and never into empty shards', () => {
    expect(shardSizes(8, 2)).toEqual([4, 4]);
    expect(shardSizes(7, 2)).toEqual([4, 3]);
    expect(shardSizes(10, 4)).toEqual([3, 3, 2, 2]);
    expect(shardSizes(2, 4)).toEqual([1, 1]);
  });
});

describe('data-parallel training', () => {
  it('gives the weights and losses of single-thread training within float tolerance', async () => {
    const single = buildDenoiser(TINY_ARCHITECTURE, 11);
    const parallelModel = buildDenoiser(TINY_ARCHITECTURE, 11);
    // Plain SGD, because Adam would hide a gradient that is off by a constant factor.
    const singleOptimizer = tf.train.sgd(0.5);
    const parallelOptimizer = tf.train.sgd(0.5);
    const parallel = await DataParallelTrainer.forModel(parallelModel, parallelOptimizer, meanSquaredError, 2, { backend: 'wasm', command: 'denoise', options: {} });

    try {
      for (const batch of batches(3, 5)) {
        const singleLoss = singleOptimizer.minimize(() => meanSquaredError(single.apply(batch.inputs, { training: true }) as tf.Tensor, batch.targets), true)!;
        const parallelLoss = await parallel.stepBatch(batch);

        expect(parallelLoss).toBeCloseTo(singleLoss.dataSync()[0], 5);
        singleLoss.dispose();
      }
    } finally {
      await parallel.close();
    }

    const before = weightsOf(buildDenoiser(TINY_ARCHITECTURE, 11));
    expect(largestDifference(weightsOf(single), before)).toBeGreaterThan(1e-3);
    expect(largestDifference(weightsOf(single), weightsOf(parallelModel))).toBeLessThan(1e-5);
  });

  it('sends the colorizer bins loss to the replicas and matches one thread', async () => {
    const single = buildColorizer(TINY_COLORIZE_ARCHITECTURE, 4, 'bins');
    const parallelModel = buildColorizer(TINY_COLORIZE_ARCHITECTURE, 4, 'bins');
    const options = { loss: 'bins' };
    const loss = COLORIZE_TRAINING.loss(options as never);
    const bins = single.outputs[0].shape[3] as number;
    const batch = {
      inputs: tf.randomUniform([4, 16, 16, 1], 0, 1, 'float32', 3),
      targets: tf.softmax(tf.randomNormal([4, 8, 8, bins], 0, 1, 'float32', 4)),
    };
    const singleOptimizer = tf.train.adam(0.01);
    const parallel = await DataParallelTrainer.forModel(parallelModel, tf.train.adam(0.01), loss, 2, { backend: 'wasm', command: 'colorize', options });

    try {
      for (let step = 0; step < 2; step++) {
        singleOptimizer.minimize(() => loss(single.apply(batch.inputs, { training: true }) as tf.Tensor, batch.targets));
        await parallel.stepBatch(batch);
      }
    } finally {
      await parallel.close();
    }

    expect(largestDifference(weightsOf(single), weightsOf(parallelModel))).toBeLessThan(1e-5);
  });

  it('trains a task end to end over two threads', async () => {
    const data = path.join(dir, 'photos');
    await mkdir(data);
    for (let i = 0; i < 4; i++) await writeSyntheticPhoto(path.join(data, `p${i}.png`), 96, 72, 'png', i + 1);
    const out = path.join(dir, 'colorize');
    const options = COLORIZE_TRAINING.resolveOptions({ data, out, epochs: 1, stepsPerEpoch: 2, batchSize: 4, validationFraction: 0.25, workingSize: 64, patchSize: 32, architecture: TINY_COLORIZE_ARCHITECTURE });
    const messages: string[] = [];
    const log = createLogger('test', (line) => messages.push(line));

    const result = await trainTask(COLORIZE_TRAINING, options, { log, backend: 'wasm', threads: 2 });

    expect(result.interrupted).toBe(false);
    expect(Number.isFinite(result.metrics.loss)).toBe(true);
    expect(messages.some((line) => line.includes('Each batch of 4 is shared by 2 threads'))).toBe(true);
    expect((await loadModel(out)).metadata.training).toMatchObject({ steps: 2, threads: 2 });
  });
});
