import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError, invalidOption } from '../errors.js';
import { combinedScore, fitScoreCalibration, percentileThreshold, type ScoreCalibration } from '../eval/video-scoring.js';
import type { Logger } from '../log.js';
import { probeVideo, readFrames } from '../media/video.js';
import { buildVideoAutoencoder, historyLength, type VideoAutoencoderArchitecture, validateVideoArchitecture } from '../models/video-anomaly.js';
import { CALIBRATION_FILE, type ClipScores, DEFAULT_CELLS, scoreFrames, type VideoScorer } from '../scan/score.js';
import { type RawOptions, readInteger, readNumber, resolveCommonTrainOptions } from './options.js';
import type { TaskTrainOptions, TrainingData, TrainingTask } from './trainer.js';
import { mean } from '../eval/table.js';
import { countOf } from '../text.js';
import { meanSquaredError } from './loop.js';

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

/** 2.0.0: the model predicts frames ahead, and scores come from calibration.json. */
export const VIDEO_MODEL_VERSION = '2.0.0';

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
    maxFrames: readInteger(raw, 'maxFrames', 50_000, trainingSampleLength(architecture), 10_000_000),
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
  const { frameWidth, frameHeight } = options.architecture;
  const sampleLength = trainingSampleLength(options.architecture);
  const train: FrameStretch[] = [];
  const validation: FrameStretch[] = [];

  for (const file of await listVideos(options.inputs)) {
    const info = await probeVideo(file);
    const limit = Math.min(options.maxFrames, info.frameCount === undefined ? options.maxFrames : Math.floor(info.frameCount * options.trainFraction));
    const reader = readFrames(file, { channels: 1, width: frameWidth, height: frameHeight, maxFrames: limit });
    const frames: Uint8Array[] = [];
    for await (const frame of reader) frames.push(frame.data);
    const summary = await reader.summary();
    if (summary.status === 'partial') log.warn(`${file}: only ${countOf(summary.framesDecoded, 'frame')} could be decoded; training uses those`);

    // Without a frame count from the container, the fraction applies to what was decoded.
    const used = info.frameCount === undefined ? frames.slice(0, Math.floor(frames.length * options.trainFraction)) : frames;
    const validationCount = Math.round(used.length * options.validationFraction);
    const trainCount = used.length - validationCount;
    if (trainCount < sampleLength) {
      const advice = options.trainFraction < 1 ? 'use a longer video or a larger --train-fraction' : 'use a longer video';
      throw new DarkroomError(
        'INVALID_INPUT',
        `${file} gives ${trainCount} training frame${trainCount === 1 ? '' : 's'}, fewer than the ${sampleLength} of one training sample; ${advice}`,
        { file },
      );
    }

    const base = path.basename(file);
    train.push({ name: `${base} frames 0-${trainCount - 1}`, frames: used.slice(0, trainCount) });
    if (validationCount > 0) validation.push({ name: `${base} frames ${trainCount}-${used.length - 1}`, frames: used.slice(trainCount) });
    log.info(`${base}: ${info.width}x${info.height} at ${info.fps.toFixed(2)} fps; training on frames 0-${trainCount - 1}, validating on ${validationCount} frames after them`);
  }
  return { train, validation };
}

/** Consecutive frames of one training sample: the model's input, and the predictionOffset frames after it that its last outputs predict. */
function trainingSampleLength(architecture: VideoAutoencoderArchitecture): number {
  return architecture.contextFrames + architecture.clipLength + architecture.predictionOffset;
}

/**
 * Copies `count` runs of consecutive frames starting at random frames into an input batch
 * [count, contextFrames + clipLength, h, w, 1] in [0, 1], and the same runs `predictionOffset`
 * frames later into the target batch.
 */
function sampleClips(stretches: readonly FrameStretch[], count: number, architecture: VideoAutoencoderArchitecture, random: { nextInt(n: number): number }): { inputs: Float32Array; targets: Float32Array } {
  const { frameWidth, frameHeight, predictionOffset } = architecture;
  const frameSize = frameWidth * frameHeight;
  const inputLength = architecture.contextFrames + architecture.clipLength;
  const sampleLength = trainingSampleLength(architecture);
  const usable = stretches.filter((stretch) => stretch.frames.length >= sampleLength);
  const inputs = new Float32Array(count * inputLength * frameSize);
  const targets = new Float32Array(count * inputLength * frameSize);
  for (let n = 0; n < count; n++) {
    const stretch = usable[random.nextInt(usable.length)];
    const start = random.nextInt(stretch.frames.length - sampleLength + 1);
    for (let t = 0; t < inputLength; t++) {
      const offset = (n * inputLength + t) * frameSize;
      const input = stretch.frames[start + t];
      const target = stretch.frames[start + t + predictionOffset];
      for (let i = 0; i < frameSize; i++) {
        inputs[offset + i] = input[i] / 255;
        targets[offset + i] = target[i] / 255;
      }
    }
  }
  return { inputs, targets };
}


export const VIDEO_ANOMALY_TRAINING: TrainingTask<VideoTrainOptions, FrameStretch> = {
  command: 'video-anomaly',
  description: 'ConvLSTM autoencoder that predicts normal video ahead, for anomaly scans',
  flags: ['trainFraction', 'maxFrames', 'percentile'],
  resolveOptions: resolveVideoTrainOptions,
  modelTask: () => 'video-anomaly',
  modelVersion: VIDEO_MODEL_VERSION,
  buildModel: (options) => buildVideoAutoencoder(options.architecture, options.seed),
  loss: () => meanSquaredError,
  describe: (options) => {
    const { clipLength, contextFrames, predictionOffset, frameWidth, frameHeight } = options.architecture;
    return (
      `sequences of ${contextFrames} + ${clipLength} grey frames at ${frameWidth}x${frameHeight}, each output predicting the frame ${predictionOffset} later, ` +
      `batch ${options.batchSize}, mean squared error; threshold at the ${options.percentile}th percentile of the training frames' scores`
    );
  },
  metadata: (options) => ({
    sizeMultiple: 1,
    inputChannels: 1,
    architecture: { name: 'convlstm-video-predictor', ...options.architecture },
    training: { dataDir: options.inputs.map((input) => path.resolve(input)).join(', '), trainFraction: options.trainFraction },
  }),
  loadData: loadVideoData,
  prepare: async (options, data, random) => {
    const { clipLength, contextFrames, frameWidth, frameHeight } = options.architecture;
    const inputLength = contextFrames + clipLength;
    let threshold = Number.NaN;
    let calibration: ScoreCalibration | undefined;

    return {
      makeBatch: () => {
        const { inputs, targets } = sampleClips(data.train, options.batchSize, options.architecture, random);
        const shape: [number, number, number, number, number] = [options.batchSize, inputLength, frameHeight, frameWidth, 1];
        return { inputs: tf.tensor5d(inputs, shape), targets: tf.tensor5d(targets, shape) };
      },
      validate: async (model: tfl.LayersModel) => {
        // Calibration and threshold come from every frame that training read, scored the way a
        // scan scores them, so that a scan can judge each frame as it streams.
        const uncalibrated: VideoScorer = { model, architecture: options.architecture };
        const trainingClips = data.train.map((stretch) => scoreFrames(uncalibrated, stretch.frames).clips);
        const validationClips = data.validation.map((stretch) => scoreFrames(uncalibrated, stretch.frames).clips);
        const components = [...trainingClips, ...validationClips].flat().flatMap((clip) => clip.components);
        const fitted = fitScoreCalibration(components, DEFAULT_CELLS);
        calibration = fitted;
        // The same numbers that scoreClip computes with this calibration, without a second pass through the model.
        const trainingScores = components.map((frame) => combinedScore(frame, fitted));
        threshold = percentileThreshold(trainingScores, options.percentile);

        const errorsOf = (clips: ClipScores[][]): number[] => clips.flat().flatMap((clip) => Array.from(clip.errors));
        const validationErrors = errorsOf(validationClips);
        return {
          trainingFrameMse: mean(errorsOf(trainingClips)),
          ...(validationErrors.length > 0 ? { validationFrameMse: mean(validationErrors) } : {}),
          threshold,
        };
      },
      inference: () => ({ threshold, percentile: options.percentile, clipLength, historyFrames: historyLength(options.architecture) }),
      files: (): Record<string, string> => (calibration === undefined ? {} : { [CALIBRATION_FILE]: JSON.stringify(calibration) + '\n' }),
    };
  },
};
