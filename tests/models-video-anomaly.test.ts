import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { loadModel, saveModel } from '../src/models/storage.js';
import {
  buildVideoAutoencoder,
  countFlopsPerFrame,
  DEFAULT_VIDEO_ARCHITECTURE,
  reconstructClips,
  validateVideoArchitecture,
  type VideoAutoencoderArchitecture,
  videoArchitectureFromMetadata,
} from '../src/models/video-anomaly.js';
import { denoiseMetadata, randomizeWeights } from './helpers/models.js';

const TINY: VideoAutoencoderArchitecture = Object.freeze({
  clipLength: 3,
  contextFrames: 0,
  predictionOffset: 0,
  frameHeight: 8,
  frameWidth: 12,
  baseFilters: 2,
  latentFilters: 3,
  lstmFilters: 2,
  bottleneckFilters: 1,
});

let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-video-model-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('video autoencoder', () => {
  it('reconstructs clips of the input shape in [0, 1]', () => {
    const model = buildVideoAutoencoder(TINY, 1);
    const clips = tf.randomUniform([2, 3, 8, 12, 1], 0, 1, 'float32', 2) as tf.Tensor5D;
    const output = reconstructClips(model, clips);
    const values = output.dataSync();

    expect(output.shape).toEqual([2, 3, 8, 12, 1]);
    expect(Math.min(...values)).toBeGreaterThan(0);
    expect(Math.max(...values)).toBeLessThan(1);
    tf.dispose([clips, output]);
    model.dispose();
  });

  it('builds the same weights from the same seed', () => {
    const first = buildVideoAutoencoder(TINY, 3).getWeights().map((weight) => Array.from(weight.dataSync()));
    const second = buildVideoAutoencoder(TINY, 3).getWeights().map((weight) => Array.from(weight.dataSync()));
    expect(second).toEqual(first);
  });

  it('counts FLOPs per frame: tiny case', () => {
    // 8x12 frames: convolutions out at 4x6 and 2x3, ConvLSTMs at 2x3, transposed convolutions in at 2x3 and 4x6.
    const expected =
      2 * 9 * 1 * 2 * 24 +
      2 * 9 * 2 * 3 * 6 +
      2 * 9 * (3 + 2) * 8 * 6 +
      2 * 9 * (2 + 1) * 4 * 6 +
      2 * 9 * (1 + 2) * 8 * 6 +
      2 * 9 * 2 * 2 * 6 +
      2 * 9 * 2 * 1 * 24;
    expect(countFlopsPerFrame(buildVideoAutoencoder(TINY))).toBe(expected);
  });

  it('counts FLOPs per frame: default architecture', () => {
    const model = buildVideoAutoencoder(DEFAULT_VIDEO_ARCHITECTURE);
    expect(countFlopsPerFrame(model)).toBe(48_771_072);
    model.dispose();
  });

  it('round-trips through save and load', async () => {
    const model = buildVideoAutoencoder(TINY, 4);
    randomizeWeights(model, 9, 0.3);
    const modelDir = path.join(dir, 'video');
    await saveModel(model, modelDir, denoiseMetadata({ task: 'video-anomaly', sizeMultiple: 4, inputChannels: 1, architecture: { ...TINY } }));
    const { model: loaded, metadata } = await loadModel(modelDir);
    const clips = tf.randomUniform([1, 3, 8, 12, 1], 0, 1, 'float32', 5) as tf.Tensor5D;

    const expected = reconstructClips(model, clips);
    const actual = reconstructClips(loaded, clips);
    expect(metadata.task).toBe('video-anomaly');
    expect(loaded.layers.map((layer) => layer.getClassName())).toEqual(model.layers.map((layer) => layer.getClassName()));
    expect(Array.from(actual.dataSync())).toEqual(Array.from(expected.dataSync()));
    tf.dispose([clips, expected, actual]);
  });
});

describe('video predictor', () => {
  const PREDICTOR: VideoAutoencoderArchitecture = Object.freeze({ ...TINY, contextFrames: 2, predictionOffset: 1 });

  it('reads the context and the clip', () => {
    const model = buildVideoAutoencoder(PREDICTOR, 1);
    expect(model.inputs[0]!.shape).toEqual([null, 5, 8, 12, 1]);
    expect(model.outputs[0]!.shape).toEqual([null, 5, 8, 12, 1]);
    model.dispose();
  });

  it('adds its change to the frame it read', () => {
    const model = buildVideoAutoencoder(PREDICTOR, 1);
    model.setWeights(model.getWeights().map((weight) => tf.zerosLike(weight)));
    const clips = tf.randomUniform([1, 5, 8, 12, 1], 0, 1, 'float32', 3) as tf.Tensor5D;

    const output = reconstructClips(model, clips);
    expect(Array.from(output.dataSync())).toEqual(Array.from(clips.dataSync()));
    tf.dispose([clips, output]);
    model.dispose();
  });
});

describe('videoArchitectureFromMetadata', () => {
  it('reads a version 1 record as reconstruction', () => {
    const { contextFrames: _context, predictionOffset: _offset, ...version1 } = DEFAULT_VIDEO_ARCHITECTURE;
    expect(videoArchitectureFromMetadata({ name: 'convlstm-video-autoencoder', ...version1 })).toEqual({ ...DEFAULT_VIDEO_ARCHITECTURE, contextFrames: 0, predictionOffset: 0 });
  });

  it('keeps the prediction fields of a version 2 record', () => {
    expect(videoArchitectureFromMetadata({ name: 'convlstm-video-predictor', ...DEFAULT_VIDEO_ARCHITECTURE })).toEqual(DEFAULT_VIDEO_ARCHITECTURE);
  });
});

describe('validateVideoArchitecture', () => {
  it('fills in the defaults', () => {
    expect(validateVideoArchitecture({ clipLength: 10 })).toEqual({ ...DEFAULT_VIDEO_ARCHITECTURE, clipLength: 10 });
  });

  it.each([
    [{ frameHeight: 70 }, 'Expected a multiple of 4 from 4 to 512 for architecture.frameHeight but received 70'],
    [{ frameWidth: 0 }, 'Expected an integer from 1 to 512 for architecture.frameWidth but received 0'],
    [{ clipLength: 1 }, 'Expected an integer from 2 to 64 for architecture.clipLength but received 1'],
    [{ lstmFilters: 2.5 }, 'Expected an integer from 1 to 512 for architecture.lstmFilters but received 2.5'],
    [{ contextFrames: -1 }, 'Expected an integer from 0 to 64 for architecture.contextFrames but received -1'],
    [{ predictionOffset: 1.5 }, 'Expected an integer from 0 to 64 for architecture.predictionOffset but received 1.5'],
  ])('rejects %j', (raw, message) => {
    expect(() => validateVideoArchitecture(raw)).toThrow(message);
  });
});
