import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { createLogger } from '../src/log.js';
import { applyStep } from '../src/models/apply.js';
import { loadModel } from '../src/models/storage.js';
import { COLORIZE_TRAINING } from '../src/train/colorize.js';
import { TRAINING_TASKS } from '../src/train/tasks.js';
import { trainTask } from '../src/train/trainer.js';
import { UPSCALE_TRAINING } from '../src/train/upscale.js';
import { VIDEO_ANOMALY_TRAINING } from '../src/train/video-anomaly.js';
import { writeLabelledVideo } from '../src/eval/sample-videos.js';
import { generateSyntheticVideo } from '../src/eval/synthetic-video.js';
import { CALIBRATION_FILE, readScoreCalibration } from '../src/scan/score.js';
import { writeSyntheticPhoto } from './helpers/images.js';
import { TINY_COLORIZE_ARCHITECTURE, TINY_UPSCALE_ARCHITECTURE } from './helpers/models.js';

const log = createLogger('test', () => {});
let dir: string;
let data: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-train-tasks-'));
  data = path.join(dir, 'photos');
  await mkdir(data);
  for (let i = 0; i < 4; i++) await writeSyntheticPhoto(path.join(data, `photo ${i}.png`), 96, 72, 'png', i + 1);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SMALL = { data: '', epochs: 2, stepsPerEpoch: 2, batchSize: 2, validationFraction: 0.25 };

function colorizeOptions(out: string, extra: Record<string, unknown> = {}) {
  return COLORIZE_TRAINING.resolveOptions({ ...SMALL, data, out, workingSize: 64, patchSize: 32, architecture: TINY_COLORIZE_ARCHITECTURE, ...extra });
}

function upscaleOptions(out: string, scale: number, extra: Record<string, unknown> = {}) {
  return UPSCALE_TRAINING.resolveOptions({ ...SMALL, data, out, scale, patchSize: 8, validationCrop: 16, architecture: TINY_UPSCALE_ARCHITECTURE, ...extra });
}

describe('task registry', () => {
  it('lists the four tasks', () => {
    expect([...TRAINING_TASKS.keys()]).toEqual(['denoise', 'colorize', 'upscale', 'video-anomaly']);
  });
});

describe('colorize training', () => {
  it('saves a loadable model with its metadata', async () => {
    const out = path.join(dir, 'colorize-a');
    const result = await trainTask(COLORIZE_TRAINING, colorizeOptions(out), { log, backend: 'wasm' });

    expect(result.interrupted).toBe(false);
    const loaded = await loadModel(out);
    expect(loaded.metadata.task).toBe('colorize');
    expect(loaded.metadata.inputChannels).toBe(1);
    expect(loaded.metadata.sizeMultiple).toBe(8);
    expect(loaded.metadata.training.workingSize).toBe(64);
    expect(loaded.metadata.training.steps).toBe(4);
    expect(loaded.metadata.training.files.validation).toHaveLength(1);
    // Too few photos to keep some for calibration: the validation photo calibrates and is listed so.
    expect(loaded.metadata.training.files.calibration).toEqual(loaded.metadata.training.files.validation);
    expect(loaded.metadata.validation.greyPsnr).toBeGreaterThan(0);
    expect(loaded.metadata.validation.psnr).toBeGreaterThan(0);
    expect(loaded.metadata.inference?.chromaBoost).toBeGreaterThanOrEqual(0);
    expect(loaded.metadata.validation.psnr).toBeGreaterThanOrEqual(loaded.metadata.validation.greyPsnr);

    const image = await applyStep('colorize', loaded, { width: 40, height: 30, rgb: new Uint8Array(40 * 30 * 3).fill(128) }, { workingSize: 64 });
    expect(image.rgb.length).toBe(40 * 30 * 3);
  });

  it('resumes from the checkpoint', async () => {
    const out = path.join(dir, 'colorize-b');
    await trainTask(COLORIZE_TRAINING, colorizeOptions(out, { epochs: 1 }), { log, backend: 'wasm' });
    const result = await trainTask(COLORIZE_TRAINING, colorizeOptions(out, { resume: true }), { log, backend: 'wasm' });

    expect(result.interrupted).toBe(false);
    const state = JSON.parse(await readFile(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.task).toBe('colorize');
    expect(state.history.map((entry: { epoch: number }) => entry.epoch)).toEqual([1, 2]);
  });

  it('seeds the initial weights', async () => {
    const first = await trainTask(COLORIZE_TRAINING, colorizeOptions(path.join(dir, 'colorize-seed-1'), { epochs: 1 }), { log, backend: 'wasm' });
    const second = await trainTask(COLORIZE_TRAINING, colorizeOptions(path.join(dir, 'colorize-seed-2'), { epochs: 1 }), { log, backend: 'wasm' });

    expect(second.metrics.loss).toBe(first.metrics.loss);
    expect(second.metrics.psnr).toBe(first.metrics.psnr);
  });

  it('keeps calibration photos out of the batches and records them', async () => {
    const many = path.join(dir, 'many-photos');
    await mkdir(many);
    for (let i = 0; i < 12; i++) await writeSyntheticPhoto(path.join(many, `p${i}.png`), 72, 64, 'png', i + 1);
    const out = path.join(dir, 'colorize-calibrated');
    await trainTask(COLORIZE_TRAINING, colorizeOptions(out, { data: many, epochs: 1, stepsPerEpoch: 1 }), { log, backend: 'wasm' });

    const { files } = (await loadModel(out)).metadata.training;
    expect(files.calibration).toHaveLength(1);
    expect(files.validation).toHaveLength(3);
    expect(files.train).toHaveLength(8);
    expect(new Set([...files.train, ...files.validation, ...files.calibration!]).size).toBe(12);
  });

  it('trains the bins head and stores the calibrated temperature for inference', async () => {
    const out = path.join(dir, 'colorize-bins');
    const result = await trainTask(COLORIZE_TRAINING, colorizeOptions(out, { loss: 'bins' }), { log, backend: 'wasm' });

    expect(result.interrupted).toBe(false);
    expect(Number.isFinite(result.metrics.loss)).toBe(true);
    const loaded = await loadModel(out);
    expect(loaded.metadata.training.loss).toBe('bins');
    expect([1, 0.7, 0.5, 0.38, 0.25]).toContain(loaded.metadata.inference?.temperature);
    expect(loaded.metadata.validation.psnr).toBeGreaterThanOrEqual(loaded.metadata.validation.greyPsnr);

    const image = await applyStep('colorize', loaded, { width: 40, height: 30, rgb: new Uint8Array(40 * 30 * 3).fill(128) }, { workingSize: 64 });
    expect(image.rgb.length).toBe(40 * 30 * 3);
  });

  it('rejects an unknown loss', () => {
    expect(() => colorizeOptions(path.join(dir, 'x'), { loss: 'huber' })).toThrow('Expected one of l2, rebalanced-huber, bins for --loss but received "huber"');
  });

  it('rejects a patch larger than the working size', () => {
    expect(() => colorizeOptions(path.join(dir, 'x'), { patchSize: 128 })).toThrow('Expected an integer no greater than --working-size (64) for --patch-size but received 128');
  });
});

describe('upscale training', () => {
  for (const scale of [2, 4]) {
    it(`saves a loadable x${scale} model with its metadata`, async () => {
      const out = path.join(dir, `upscale-${scale}`);
      const result = await trainTask(UPSCALE_TRAINING, upscaleOptions(out, scale), { log, backend: 'wasm' });

      expect(result.interrupted).toBe(false);
      const loaded = await loadModel(out);
      expect(loaded.metadata.task).toBe(`upscale-x${scale}`);
      expect(loaded.metadata.training.scale).toBe(scale);
      expect(loaded.metadata.validation.bicubicY).toBeGreaterThan(10);
      expect(loaded.metadata.validation.psnrY).toBeGreaterThan(10);
    });
  }

  it('resumes from the checkpoint and refuses another scale', async () => {
    const out = path.join(dir, 'upscale-resume');
    await trainTask(UPSCALE_TRAINING, upscaleOptions(out, 2, { epochs: 1 }), { log, backend: 'wasm' });
    await expect(trainTask(UPSCALE_TRAINING, upscaleOptions(out, 4, { resume: true }), { log, backend: 'wasm' })).rejects.toThrow(
      `The checkpoint in ${out} is for "upscale-x2", not upscale-x4; resume with the same task, or start over with --overwrite`,
    );
    const result = await trainTask(UPSCALE_TRAINING, upscaleOptions(out, 2, { resume: true }), { log, backend: 'wasm' });

    expect(result.interrupted).toBe(false);
    const state = JSON.parse(await readFile(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.epoch).toBe(2);
  });

  it('rejects an existing model without --overwrite', async () => {
    const out = path.join(dir, 'upscale-again');
    await trainTask(UPSCALE_TRAINING, upscaleOptions(out, 2, { epochs: 1 }), { log, backend: 'wasm' });

    await expect(trainTask(UPSCALE_TRAINING, upscaleOptions(out, 2, { epochs: 1 }), { log, backend: 'wasm' })).rejects.toThrow(
      `${out} already contains a model or checkpoint; add --resume to continue its training, or --overwrite to start over and replace it`,
    );
    const result = await trainTask(UPSCALE_TRAINING, upscaleOptions(out, 2, { epochs: 1, overwrite: true }), { log, backend: 'wasm' });
    expect(result.interrupted).toBe(false);
  });

  it('seeds the initial weights', async () => {
    const first = await trainTask(UPSCALE_TRAINING, upscaleOptions(path.join(dir, 'upscale-seed-1'), 2, { epochs: 1 }), { log, backend: 'wasm' });
    const second = await trainTask(UPSCALE_TRAINING, upscaleOptions(path.join(dir, 'upscale-seed-2'), 2, { epochs: 1 }), { log, backend: 'wasm' });

    expect(second.metrics.loss).toBe(first.metrics.loss);
    expect(second.metrics.psnrY).toBe(first.metrics.psnrY);
  });

  it('rejects a scale other than 2 or 4', () => {
    expect(() => upscaleOptions(path.join(dir, 'x'), 3)).toThrow('Expected one of 2, 4 for --scale but received 3');
  });
});

describe('video-anomaly training', () => {
  const TINY_VIDEO = { clipLength: 4, contextFrames: 2, predictionOffset: 1, frameHeight: 24, frameWidth: 32, baseFilters: 4, latentFilters: 4, lstmFilters: 4, bottleneckFilters: 2 };

  async function writeVideo(frames: number): Promise<string> {
    const file = path.join(dir, `walkway-${frames}.avi`);
    await writeLabelledVideo(file, generateSyntheticVideo({ seed: 9, frames, width: 64, height: 48 }), false);
    return file;
  }

  it('saves the model with its score calibration and threshold', async () => {
    const out = path.join(dir, 'video');
    const options = VIDEO_ANOMALY_TRAINING.resolveOptions({ ...SMALL, data: await writeVideo(40), out, architecture: TINY_VIDEO });
    const result = await trainTask(VIDEO_ANOMALY_TRAINING, options, { log, backend: 'wasm' });

    expect(result.interrupted).toBe(false);
    const loaded = await loadModel(out);
    expect(loaded.metadata.architecture).toMatchObject({ name: 'convlstm-video-predictor', contextFrames: 2, predictionOffset: 1 });
    expect(loaded.metadata.inference).toMatchObject({ percentile: 99.5, clipLength: 4, historyFrames: 3 });
    expect(Number.isFinite(loaded.metadata.inference!.threshold)).toBe(true);
    const calibration = (await readScoreCalibration(out))!;
    expect([calibration.cells.size, calibration.cells.stride, calibration.cells.mean.length]).toEqual([8, 8, 12]);
    expect([calibration.mirrorCells.size, calibration.mirrorCells.stride, calibration.mirrorCells.mean.length]).toEqual([16, 8, 6]);
    expect(calibration.differenceFloor).toBeGreaterThan(0);
    expect(JSON.parse(await readFile(path.join(out, CALIBRATION_FILE), 'utf8'))).toEqual(calibration);
  });

  it('trains the ConvLSTM model over two threads to the losses of one thread', async () => {
    const video = await writeVideo(40);
    const options = (out: string) => VIDEO_ANOMALY_TRAINING.resolveOptions({ ...SMALL, data: [video], out: path.join(dir, out), architecture: TINY_VIDEO });

    const one = await trainTask(VIDEO_ANOMALY_TRAINING, options('video-one-thread'), { log, backend: 'wasm', threads: 1 });
    const two = await trainTask(VIDEO_ANOMALY_TRAINING, options('video-two-threads'), { log, backend: 'wasm', threads: 2 });

    expect(two.metrics.loss).toBeCloseTo(one.metrics.loss, 6);
    expect(Object.keys(two.metrics).sort()).toEqual(Object.keys(one.metrics).sort());
    for (const key of Object.keys(one.metrics)) expect(Math.abs(two.metrics[key] - one.metrics[key])).toBeLessThan(1e-3 * Math.max(1, Math.abs(one.metrics[key])));
  });

  it('resumes only on the same data', async () => {
    const out = path.join(dir, 'video-resume');
    const video = await writeVideo(40);
    const options = (extra: Record<string, unknown>) => VIDEO_ANOMALY_TRAINING.resolveOptions({ ...SMALL, data: [video], out, architecture: TINY_VIDEO, ...extra });
    await trainTask(VIDEO_ANOMALY_TRAINING, options({ epochs: 1 }), { log, backend: 'wasm' });

    await expect(trainTask(VIDEO_ANOMALY_TRAINING, options({ data: [video, video], resume: true }), { log, backend: 'wasm' })).rejects.toThrow(
      `The checkpoint in ${out} was trained on --data ${JSON.stringify([video])}, not ${JSON.stringify([video, video])}; resume with the same data, or start over with --overwrite`,
    );
    const result = await trainTask(VIDEO_ANOMALY_TRAINING, options({ resume: true }), { log, backend: 'wasm' });
    expect(result.interrupted).toBe(false);
    const state = JSON.parse(await readFile(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.history.map((entry: { epoch: number }) => entry.epoch)).toEqual([1, 2]);
  });

  it('rejects a train fraction above 1', () => {
    expect(() => VIDEO_ANOMALY_TRAINING.resolveOptions({ ...SMALL, data: 'x.avi', out: 'y', trainFraction: 2 })).toThrow(
      'Expected a number from 0.01 to 1 for --train-fraction but received 2',
    );
  });

  it('rejects a video shorter than one training sample', async () => {
    const options = VIDEO_ANOMALY_TRAINING.resolveOptions({ ...SMALL, data: await writeVideo(8), out: path.join(dir, 'video-short'), architecture: TINY_VIDEO });

    await expect(trainTask(VIDEO_ANOMALY_TRAINING, options, { log, backend: 'wasm' })).rejects.toThrow(
      `${options.inputs[0]} gives 6 training frames, fewer than the 7 of one training sample; use a longer video`,
    );
  });
});
