import * as tf from '@tensorflow/tfjs-core';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { createLogger } from '../src/log.js';
import { loadModel } from '../src/models/storage.js';
import { resolveDenoiseTrainOptions, trainDenoise } from '../src/train/denoise.js';
import { roundMetrics, stoppingMessage } from '../src/train/loop.js';
import { addGaussianNoise } from '../src/train/noise.js';
import { listPhotos, splitByName } from '../src/train/photos.js';
import { SeededRandom } from '../src/train/random.js';
import { writeSyntheticPhoto } from './helpers/images.js';
import { abortAfterReads } from './helpers/abort.js';
import { TINY_ARCHITECTURE } from './helpers/models.js';

const log = createLogger('test', () => {});
let dir: string;
let data: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-train-'));
  data = path.join(dir, 'photos');
  await mkdir(data);
  for (let i = 0; i < 4; i++) await writeSyntheticPhoto(path.join(data, `photo ${i}.png`), 96, 80, 'png', i + 1);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(out: string, extra: Record<string, unknown> = {}) {
  return resolveDenoiseTrainOptions({
    data,
    out,
    epochs: 2,
    stepsPerEpoch: 3,
    batchSize: 2,
    patchSize: 32,
    validationCrop: 64,
    validationFraction: 0.25,
    architecture: TINY_ARCHITECTURE,
    ...extra,
  });
}

describe('denoise training', () => {
  it('saves a loadable model with its metadata', async () => {
    const out = path.join(dir, 'model-a');
    const result = await trainDenoise(options(out), { log, backend: 'wasm' });

    expect(result.interrupted).toBe(false);
    const loaded = await loadModel(out);
    expect(loaded.metadata.task).toBe('denoise');
    expect(loaded.metadata.training.epochs).toBe(2);
    expect(loaded.metadata.training.steps).toBe(6);
    expect(loaded.metadata.training.files.validation).toHaveLength(1);
    expect(loaded.metadata.training.files.train).toHaveLength(3);
    expect(loaded.metadata.validation.psnr25).toBeGreaterThan(0);
    expect(loaded.metadata.validation).not.toHaveProperty('loss');
    expect(loaded.metadata.training.finalLoss).toBe(result.metrics.loss);
    expect(loaded.metadata.architecture).toMatchObject(TINY_ARCHITECTURE);
  });

  it('resumes from the checkpoint', async () => {
    const out = path.join(dir, 'model-b');
    await trainDenoise(options(out), { log, backend: 'wasm' });
    const result = await trainDenoise(options(out, { epochs: 3, resume: true }), { log, backend: 'wasm' });

    expect(result.interrupted).toBe(false);
    const state = JSON.parse(await readFile(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.epoch).toBe(3);
    expect(state.history.map((entry: { epoch: number }) => entry.epoch)).toEqual([1, 2, 3]);
  });

  it('stops on abort and keeps a checkpoint', async () => {
    const out = path.join(dir, 'model-c');
    const controller = new AbortController();
    controller.abort();
    const result = await trainDenoise(options(out), { log, backend: 'wasm', signal: controller.signal });

    expect(result.interrupted).toBe(true);
    expect((await stat(path.join(out, 'checkpoint', 'state.json'))).isFile()).toBe(true);
    await expect(stat(path.join(out, 'model.json'))).rejects.toThrow();
  });

  it('mid-epoch resume matches an uninterrupted run', async () => {
    const whole = path.join(dir, 'mid-epoch-whole');
    const split = path.join(dir, 'mid-epoch-split');
    await trainDenoise(options(whole), { log, backend: 'wasm' });

    // Stops after 4 steps: one into epoch 2.
    const signal = abortAfterReads(4);
    const stopped = await trainDenoise(options(split), { log, backend: 'wasm', signal });
    const state = JSON.parse(await readFile(path.join(split, 'checkpoint', 'state.json'), 'utf8'));
    const resumed = await trainDenoise(options(split, { resume: true }), { log, backend: 'wasm' });

    expect(stopped.interrupted).toBe(true);
    expect(state).toMatchObject({ epoch: 1, step: 4, stepInEpoch: 1 });
    expect(resumed.interrupted).toBe(false);
    const expected = (await loadModel(whole)).model.getWeights();
    const actual = (await loadModel(split)).model.getWeights();
    for (let i = 0; i < expected.length; i++) {
      const difference = (await tf.max(tf.abs(tf.sub(expected[i]!, actual[i]!))).data())[0]!;
      expect(difference, `weight ${i}`).toBeLessThan(1e-6);
    }
    expect((await loadModel(split)).metadata.training.steps).toBe(6);
  });

  it('broken files keep the held-out split', async () => {
    const withBroken = path.join(dir, 'photos-and-broken');
    await cp(data, withBroken, { recursive: true });
    await writeFile(path.join(withBroken, 'notes.jpg'), 'not an image');
    await writeFile(path.join(withBroken, 'half.png'), (await readFile(path.join(data, 'photo 0.png'))).subarray(0, 100));
    const clean = path.join(dir, 'split-clean');
    const broken = path.join(dir, 'split-broken');
    await trainDenoise(options(clean, { epochs: 1, stepsPerEpoch: 1 }), { log, backend: 'wasm' });
    await trainDenoise(options(broken, { data: withBroken, epochs: 1, stepsPerEpoch: 1 }), { log, backend: 'wasm' });

    const cleanFiles = (await loadModel(clean)).metadata.training.files;
    const brokenFiles = (await loadModel(broken)).metadata.training.files;
    expect(brokenFiles.validation).toEqual(cleanFiles.validation);
    expect(brokenFiles.train).toEqual(cleanFiles.train);
  });

  it('starts from the same weights for the same seed', async () => {
    const first = await trainDenoise(options(path.join(dir, 'seed-1'), { epochs: 1 }), { log, backend: 'wasm' });
    const second = await trainDenoise(options(path.join(dir, 'seed-2'), { epochs: 1 }), { log, backend: 'wasm' });

    expect(second.metrics.loss).toBe(first.metrics.loss);
    expect(second.metrics.psnr25).toBe(first.metrics.psnr25);
  });

  it('refuses --resume without a checkpoint', async () => {
    const out = path.join(dir, 'model-d');
    await expect(trainDenoise(options(out, { resume: true }), { log, backend: 'wasm' })).rejects.toThrow(
      `No checkpoint to resume in ${path.join(out, 'checkpoint')}; run without --resume to start over`,
    );
  });

  it('starts from the --init weights', async () => {
    const source = path.join(dir, 'init-source');
    await trainDenoise(options(source, { epochs: 1 }), { log, backend: 'wasm' });
    const out = path.join(dir, 'init-target');
    // One Adam step at 1e-7 moves no weight by more than about 1e-7, so the saved weights show
    // where the run started. Seed 9 alone would build other weights.
    await trainDenoise(options(out, { epochs: 1, stepsPerEpoch: 1, learningRate: 1e-7, seed: 9, init: source }), { log, backend: 'wasm' });

    const before = await loadModel(source);
    const after = await loadModel(out);
    const pairs = before.model.getWeights().map((weight, index) => [weight.dataSync(), after.model.getWeights()[index].dataSync()] as const);
    const largest = Math.max(...pairs.flatMap(([a, b]) => Array.from(a, (value, i) => Math.abs(value - b[i]))));
    expect(largest).toBeLessThan(1e-5);
    expect(after.metadata.training.initialisedFrom).toEqual({ model: source, version: before.metadata.version, steps: 3, seconds: before.metadata.training.seconds });
  });

  it('rejects --init with other settings', async () => {
    const source = path.join(dir, 'init-source-b');
    await trainDenoise(options(source, { epochs: 1 }), { log, backend: 'wasm' });
    const out = path.join(dir, 'init-wider');
    const wider = { ...TINY_ARCHITECTURE, baseFilters: 5 };

    await expect(trainDenoise(options(out, { architecture: wider, init: source }), { log, backend: 'wasm' })).rejects.toThrow(
      `--init ${source} was built with other settings (its weight 1 of 22 is 3x3x3x4 there and 3x3x3x5 here); train with the options it was trained with (see its darkroom.json)`,
    );
  });

  it("rejects --init of another task", async () => {
    const source = path.join(dir, 'init-source-b');
    const other = path.join(dir, 'init-colorize');
    await cp(source, other, { recursive: true });
    const metadata = JSON.parse(await readFile(path.join(other, 'darkroom.json'), 'utf8'));
    await writeFile(path.join(other, 'darkroom.json'), JSON.stringify({ ...metadata, task: 'colorize' }));

    await expect(trainDenoise(options(path.join(dir, 'init-other'), { init: other }), { log, backend: 'wasm' })).rejects.toThrow(
      `--init ${other} is a model for colorize, not for denoise; give a model of the task being trained`,
    );
  });

  it('rejects a missing or plain --init folder', async () => {
    const missing = path.join(dir, 'no-such-model');
    await expect(trainDenoise(options(path.join(dir, 'init-missing'), { init: missing }), { log, backend: 'wasm' })).rejects.toThrow(
      `--init ${missing} does not exist; give the folder of a model saved by darkroom train`,
    );
    await expect(trainDenoise(options(path.join(dir, 'init-plain'), { init: data }), { log, backend: 'wasm' })).rejects.toThrow(
      `--init ${data} is not a model folder (it has no darkroom.json); give the folder of a model saved by darkroom train`,
    );
  });

  it('rejects resuming from another --init', async () => {
    const out = path.join(dir, 'init-resume');
    await trainDenoise(options(out, { epochs: 1 }), { log, backend: 'wasm' });
    const source = path.join(dir, 'init-source-b');

    await expect(trainDenoise(options(out, { epochs: 2, resume: true, init: source }), { log, backend: 'wasm' })).rejects.toThrow(
      `The checkpoint in ${out} was started from random weights, not from --init ${source}; resume without --init, or start over with --overwrite`,
    );
  });

  it('fine-tunes at a tenth of the learning rate', () => {
    expect(options(path.join(dir, 'x')).learningRate).toBe(0.001);
    expect(options(path.join(dir, 'x'), { init: 'models/denoise' }).learningRate).toBe(0.0001);
    expect(options(path.join(dir, 'x'), { init: 'models/denoise', learningRate: '0.0005' }).learningRate).toBe(0.0005);
  });

  it('learns to remove noise', async () => {
    const out = path.join(dir, 'model-e');
    const result = await trainDenoise(options(out, { epochs: 1, stepsPerEpoch: 200, batchSize: 4, learningRate: 0.003, minSigma: 20, maxSigma: 30 }), { log, backend: 'wasm' });

    // The untrained model is the identity, a gain of 0 dB. On these smooth photos 200 steps gave
    // gains from 1.3 to 4.1 dB over seeds 1 to 5, so 1 dB separates learning from not learning.
    expect(result.metrics.psnr25 - result.metrics.noisy25).toBeGreaterThan(1);
  });
});

describe('training options', () => {
  it('rejects a patch size that is not a multiple of 4', () => {
    expect(() => resolveDenoiseTrainOptions({ data: 'a', out: 'b', patchSize: '30' })).toThrow('Expected a multiple of 4 for --patch-size but received 30');
  });

  it('rejects a non-numeric epoch count', () => {
    expect(() => resolveDenoiseTrainOptions({ data: 'a', out: 'b', epochs: 'many' })).toThrow('Expected an integer from 1 to 100000 for --epochs but received "many"');
  });

  it('rejects a missing data folder', () => {
    expect(() => resolveDenoiseTrainOptions({ out: 'b' })).toThrow('Expected a folder path for --data but received undefined');
  });

  it('rejects max sigma below min sigma', () => {
    expect(() => resolveDenoiseTrainOptions({ data: 'a', out: 'b', minSigma: '30', maxSigma: '10' })).toThrow('Expected a number of at least --min-sigma (30) for --max-sigma but received 10');
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(resolveDenoiseTrainOptions({ data: 'a', out: 'b' }))).toBe(true);
  });
});

describe('training data', () => {
  it('splits by name hash, stable under additions', () => {
    const files = ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg', 'e.jpg', 'f.jpg', 'g.jpg', 'h.jpg', 'i.jpg', 'j.jpg'];
    const first = splitByName(files, 0.2);
    expect(first.validation).toHaveLength(2);
    expect(first.train).toHaveLength(8);
    expect([...first.train, ...first.validation].sort()).toEqual(files);

    const grown = splitByName([...files, 'k.jpg'], 0.2);
    for (const name of grown.train.filter((file) => file !== 'k.jpg')) expect(first.validation).not.toContain(name);
  });

  it('adds the same noise for the same seed', () => {
    const pixels = new Uint8Array(300).fill(128);
    expect(addGaussianNoise(pixels, 25, 4)).toEqual(addGaussianNoise(pixels, 25, 4));
    expect(addGaussianNoise(pixels, 25, 4)).not.toEqual(addGaussianNoise(pixels, 25, 5));
  });

  it('draws noise with the requested deviation', () => {
    const random = new SeededRandom(9);
    let sum = 0;
    let squares = 0;
    const count = 20000;
    for (let i = 0; i < count; i++) {
      const value = random.nextGaussian();
      sum += value;
      squares += value * value;
    }
    expect(Math.abs(sum / count)).toBeLessThan(0.03);
    expect(Math.sqrt(squares / count)).toBeCloseTo(1, 1);
  });
});

describe('progress metrics', () => {
  it('keeps three significant digits below 0.01', () => {
    expect(roundMetrics({ loss: 0.5, psnr: 31.234, trainingFrameMse: 0.002354, zero: 0 })).toEqual({ psnr: '31.23', trainingFrameMse: '0.00235', zero: '0.00' });
  });
});

describe('stop messages', () => {
  it('count the steps kept, and say when none are', () => {
    expect(stoppingMessage(2, 0)).toBe('Stopping before epoch 3; --resume starts it');
    expect(stoppingMessage(0, 1)).toBe('Stopping after 1 step of epoch 1: the checkpoint keeps it, and --resume continues with step 2');
    expect(stoppingMessage(0, 13)).toBe('Stopping after 13 steps of epoch 1: the checkpoint keeps them, and --resume continues with step 14');
  });
});

describe('training data folder', () => {
  it('names a missing folder or a file', async () => {
    const missing = path.join(dir, 'no-such-folder');
    const file = path.join(data, 'photo 0.png');

    await expect(listPhotos(missing)).rejects.toThrow(`Data folder ${missing}: it does not exist; give --data a folder of photos`);
    await expect(listPhotos(file)).rejects.toThrow(`Data folder ${file}: it is a file, not a folder; give --data a folder of photos`);
  });
});
