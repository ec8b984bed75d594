import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError, invalidOption } from '../errors.js';
import { percentileThreshold } from '../eval/video-scoring.js';
import type { Logger } from '../log.js';
import { probeVideo, readFrames } from '../media/video.js';
import { buildVideoAutoencoder, type VideoAutoencoderArchitecture, validateVideoArchitecture } from '../models/video-anomaly.js';
import { scoreFrames } from '../scan/score.js';
import { type RawOptions, readInteger, readNumber, resolveCommonTrainOptions } from './options.js';
import type { TaskTrainOptions, TrainingData, TrainingTask } from './trainer.js';

export interface VideoTrainOptions extends TaskTrainOptions {
  /** Video files, or folders whose videos are all used. */
  readonly inputs: readonly string[];
  /** Share of each video, from its start, that training reads; the rest is left for testing. */
  readonly trainFraction: number;
  /** At most this many frames are read from each video, which bounds memory. */
  readonly maxFrames: number;
  /** Percentile of the training frames' scores that becomes the anomaly threshold. */
  readonly percentile: number;
  readonly architecture: VideoAutoencoderArchitecture;
}

/** A stretch of one video's frames, grey, at the model's frame size. */
export interface FrameStretch {
  readonly name: string;
  readonly frames: readonly Uint8Array[];
}

export const VIDEO_MODEL_VERSION = '1.0.0';

/** File endings that training and watch folders read as videos. */
export const VIDEO_EXTENSIONS = new Set(['.avi', '.mp4', '.m4v', '.mov', '.mkv', '.webm', '.mpg', '.mpeg', '.wmv', '.flv', '.ts', '.mts']);

export function resolveVideoTrainOptions(raw: RawOptions): Readonly<VideoTrainOptions> {
  const inputs = Array.isArray(raw.data) ? raw.data : [raw.data];
  const common = resolveCommonTrainOptions({ ...raw, data: inputs[0] }, { epochs: 20, stepsPerEpoch: 50, batchSize: 4, learningRate: 1e-3 });
  for (const input of inputs) {
    if (typeof input !== 'string' || input.trim() === '') throw invalidOption('a video file or folder', '--data', input);
  }
  const architecture = validateVideoArchitecture((raw.architecture ?? {}) as Partial<VideoAutoencoderArchitecture>);

  return Object.freeze({
    ...common,
    inputs: Object.freeze([...(inputs as string[])]),
    trainFraction: readNumber(raw, 'trainFraction', 1, 0.01, 1),
    maxFrames: readInteger(raw, 'maxFrames', 50_000, architecture.clipLength * 2, 10_000_000),
    percentile: readNumber(raw, 'percentile', 99.5, 50, 100),
    patchSize: architecture.frameWidth,
    architecture,
  });
}

/** Expands folders into the videos they contain, sorted by name. */
export async function listVideos(inputs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const info = await stat(input).catch((error: Error) => {
      throw new DarkroomError('INVALID_INPUT', `${input} cannot be read: ${error.message}`, { file: input, cause: error });
    });
    if (!info.isDirectory()) {
      files.push(input);
      continue;
    }
    const names = (await readdir(input)).filter((name) => !name.startsWith('.') && VIDEO_EXTENSIONS.has(path.extname(name).toLowerCase())).sort();
    if (names.length === 0) throw new DarkroomError('INVALID_INPUT', `No videos (${[...VIDEO_EXTENSIONS].join(', ')}) found in ${input}`, { file: input });
    files.push(...names.map((name) => path.join(input, name)));
  }
  return files;
}

/**
 * Reads the first `trainFraction` of each video at the model's frame size, and splits off the
 * last `validationFraction` of those frames for validation: later frames of the same camera
 * are the fairest held-out test that a single video allows.
 */
async function loadVideoData(options: VideoTrainOptions, log: Logger): Promise<TrainingData<FrameStretch>> {
  const { frameWidth, frameHeight, clipLength } = options.architecture;
  const train: FrameStretch[] = [];
  const validation: FrameStretch[] = [];

  for (const file of await listVideos(options.inputs)) {
    const info = await probeVideo(file);
    const limit = Math.min(options.maxFrames, info.frameCount === undefined ? options.maxFrames : Math.floor(info.frameCount * options.trainFraction));
    const reader = readFrames(file, { channels: 1, width: frameWidth, height: frameHeight, maxFrames: limit });
    const frames: Uint8Array[] = [];
    for await (const frame of reader) frames.push(frame.data);
    const summary = await reader.summary();
    if (summary.status === 'partial') log.warn(`${file}: only ${summary.framesDecoded} frames could be decoded; training uses those`);

    // Without a frame count from the container, the fraction applies to what was decoded.
    const used = info.frameCount === undefined ? frames.slice(0, Math.floor(frames.length * options.trainFraction)) : frames;
    const validationCount = Math.round(used.length * options.validationFraction);
    const trainCount = used.length - validationCount;
    if (trainCount < clipLength) {
      throw new DarkroomError('INVALID_INPUT', `${file} gives ${trainCount} training frame${trainCount === 1 ? '' : 's'}, fewer than one clip of ${clipLength}; ${options.trainFraction < 1 ? 'use a longer video or a larger --train-fraction' : 'use a longer video'}`, { file });
    }

    const base = path.basename(file);
    train.push({ name: `${base} frames 0-${trainCount - 1}`, frames: used.slice(0, trainCount) });
    if (validationCount >= clipLength) validation.push({ name: `${base} frames ${trainCount}-${used.length - 1}`, frames: used.slice(trainCount) });
    log.info(`${base}: ${info.width}x${info.height} at ${info.fps.toFixed(2)} fps; training on frames 0-${trainCount - 1}, validating on ${validationCount} frames after them`);
  }
  return { train, validation };
}

/** Copies `count` clips starting at random frames into one [count, clipLength, h, w, 1] batch in [0, 1]. */
function sampleClips(stretches: readonly FrameStretch[], count: number, clipLength: number, frameSize: number, random: { nextInt(n: number): number }): Float32Array {
  const usable = stretches.filter((stretch) => stretch.frames.length >= clipLength);
  const batch = new Float32Array(count * clipLength * frameSize);
  for (let n = 0; n < count; n++) {
    const stretch = usable[random.nextInt(usable.length)];
    const start = random.nextInt(stretch.frames.length - clipLength + 1);
    for (let t = 0; t < clipLength; t++) {
      const frame = stretch.frames[start + t];
      const offset = (n * clipLength + t) * frameSize;
      for (let i = 0; i < frameSize; i++) batch[offset + i] = frame[i] / 255;
    }
  }
  return batch;
}

export const VIDEO_ANOMALY_TRAINING: TrainingTask<VideoTrainOptions, FrameStretch> = {
  command: 'video-anomaly',
  description: 'ConvLSTM autoencoder that learns normal video, for anomaly scans',
  flags: ['trainFraction', 'maxFrames', 'percentile'],
  resolveOptions: resolveVideoTrainOptions,
  modelTask: () => 'video-anomaly',
  modelVersion: VIDEO_MODEL_VERSION,
  buildModel: (options) => buildVideoAutoencoder(options.architecture, options.seed),
  describe: (options) => {
    const { clipLength, frameWidth, frameHeight } = options.architecture;
    return `clips of ${clipLength} grey frames at ${frameWidth}x${frameHeight}, batch ${options.batchSize}, mean squared error; threshold at the ${options.percentile}th percentile of the training frames' scores`;
  },
  metadata: (options) => ({
    sizeMultiple: 1,
    inputChannels: 1,
    architecture: { name: 'convlstm-video-autoencoder', ...options.architecture },
    training: { dataDir: options.inputs.map((input) => path.resolve(input)).join(', '), trainFraction: options.trainFraction },
  }),
  loadData: loadVideoData,
  prepare: async (options, data, random) => {
    const { clipLength, frameWidth, frameHeight } = options.architecture;
    const frameSize = frameWidth * frameHeight;
    let threshold = Number.NaN;

    return {
      makeBatch: () => {
        const clips = sampleClips(data.train, options.batchSize, clipLength, frameSize, random);
        const shape: [number, number, number, number, number] = [options.batchSize, clipLength, frameHeight, frameWidth, 1];
        return { inputs: tf.tensor5d(clips, shape), targets: tf.tensor5d(clips, shape) };
      },
      loss: (predictions, targets) => tf.losses.meanSquaredError(targets, predictions) as tf.Scalar,
      validate: async (model: tfl.LayersModel) => {
        // The threshold comes from every frame that training read, scored the way a scan
        // scores them, so that a scan can judge each frame as it streams.
        const trainingScores = [...data.train, ...data.validation].flatMap((stretch) => Array.from(scoreFrames(model, stretch.frames, options.architecture).scores));
        threshold = percentileThreshold(trainingScores, options.percentile);
        const validationScores = data.validation.flatMap((stretch) => Array.from(scoreFrames(model, stretch.frames, options.architecture).scores));
        const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
        return {
          trainingFrameMse: mean(trainingScores),
          ...(validationScores.length > 0 ? { validationFrameMse: mean(validationScores) } : {}),
          threshold,
        };
      },
      inference: () => ({ threshold, percentile: options.percentile, clipLength }),
    };
  },
};
