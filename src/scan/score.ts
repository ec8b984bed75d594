/**
 * Per-frame anomaly scores of a video, as a scan computes them while frames stream in. Training
 * calibrates its threshold with the same code, so that a scan flags the share of normal frames
 * that training chose.
 *
 * The model reads `contextFrames + clipLength` frames and predicts, from the frames up to each
 * one, the frame `predictionOffset` later. A clip scores its `clipLength` frames against the
 * predictions of the model's last `clipLength` outputs. The frames that the model reads before
 * the clip, its history, are the `contextFrames + predictionOffset` frames just before it.
 *
 * Each clip also goes through the model mirrored left to right, and that prediction is mirrored
 * back. In a scene whose normal motion has a direction, such as a walkway where everyone walks
 * one way, the model predicts normal motion well and its mirror image badly. Someone walking the
 * wrong way reverses that in their part of the frame, although the prediction error alone
 * changes little, because each person is hard to predict. The mirror contrast, the prediction
 * error minus the mirrored one, measures that.
 *
 * With calibration statistics (calibration.json beside the model), a frame's score is
 * `combinedScore` of these components. Without them, as for a model saved before version 2, the
 * score is the frame's mean squared error.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError } from '../errors.js';
import { cellErrors, combinedScore, errorMap, frameDifference, type FrameComponents, type ScoreCalibration } from '../eval/video-scoring.js';
import type { LoadedModel } from '../models/storage.js';
import { historyLength, type VideoAutoencoderArchitecture, videoArchitectureFromMetadata } from '../models/video-anomaly.js';

export const CALIBRATION_FILE = 'calibration.json';

/** A trained model with what its scores need. */
export interface VideoScorer {
  readonly model: tfl.LayersModel;
  readonly architecture: VideoAutoencoderArchitecture;
  /** Absent while training calibrates, and for models saved before version 2. */
  readonly calibration?: ScoreCalibration;
}

/** Scores of the real frames of one clip, with what is needed to draw their error maps later. */
export interface ClipScores {
  readonly scores: Float64Array;
  /** Mean squared prediction error of each frame, the score of an uncalibrated model. */
  readonly errors: Float64Array;
  /** The clip's real frames in [0, 1], one after another. */
  readonly frames: Float32Array;
  /** The model's prediction of each of those frames. */
  readonly predictions: Float32Array;
  /** The components of each frame's score. */
  readonly components: readonly FrameComponents[];
}

/**
 * Cell geometry at 96x72. Cells of 8x8 pixels every 8 pixels fit a walking person of PAL video
 * scaled to that size, about 4x10 pixels. The mirror contrast takes cells of 16x16 every 8
 * pixels, because a wrong prediction of someone's direction spreads over both where the model
 * moved them and where they went. Both were the best of the sizes tried on synthetic walkway
 * video (4 to 24 pixels).
 */
export const DEFAULT_CELLS = Object.freeze({ cells: Object.freeze({ size: 8, stride: 8 }), mirrorCells: Object.freeze({ size: 16, stride: 8 }) });

function toUnit(frame: Uint8Array, target: Float32Array, offset: number): void {
  for (let i = 0; i < frame.length; i++) target[offset + i] = frame[i]! / 255;
}

/** Mirrors frames left to right in place, by reversing every row of `width` values. */
function mirrorRows(values: Float32Array, width: number): void {
  for (let row = 0; row < values.length / width; row++) values.subarray(row * width, (row + 1) * width).reverse();
}

function predict(model: tfl.LayersModel, input: Float32Array, shape: [number, number, number, number, number]): Float32Array {
  const output = tf.tidy(() => model.predict(tf.tensor5d(input, shape)) as tf.Tensor);
  const values = output.dataSync() as Float32Array;
  output.dispose();
  return values;
}

/**
 * Scores one clip of 1 to `clipLength` frames, given the frames before it (`history`, its last
 * `historyLength(architecture)` frames are used, and fewer at the start of a video). Missing
 * history repeats the first frame there is. A short tail clip is padded by repeating its last
 * frame, and only its real frames are scored. Every clip starts from a zero ConvLSTM state, so
 * a frame's score depends only on the frames in and just before its clip, and a scan resumed
 * at a clip boundary gives the same scores as an uninterrupted one.
 */
export function scoreClip(scorer: VideoScorer, frames: readonly Uint8Array[], history: readonly Uint8Array[] = []): ClipScores {
  const { clipLength, contextFrames, frameWidth, frameHeight } = scorer.architecture;
  const frameSize = frameWidth * frameHeight;
  if (frames.length === 0 || frames.length > clipLength) throw new DarkroomError('INTERNAL', `scoreClip takes 1 to ${clipLength} frames, not ${frames.length}`);
  for (const [t, frame] of [...history, ...frames].entries()) {
    if (frame.length !== frameSize) throw new DarkroomError('INTERNAL', `Frame ${t} of a clip has ${frame.length} values instead of ${frameWidth}x${frameHeight}`);
  }

  const before = historyLength(scorer.architecture);
  const past = history.slice(Math.max(0, history.length - before));
  const sequence = [...new Array<Uint8Array>(before - past.length).fill(past[0] ?? frames[0]!), ...past, ...frames];
  while (sequence.length < before + clipLength) sequence.push(frames[frames.length - 1]!);

  const inputLength = contextFrames + clipLength;
  const shape: [number, number, number, number, number] = [1, inputLength, frameHeight, frameWidth, 1];
  const input = new Float32Array(inputLength * frameSize);
  for (let t = 0; t < inputLength; t++) toUnit(sequence[t]!, input, t * frameSize);
  const real = frames.length * frameSize;
  const predictions = predict(scorer.model, input, shape).slice(contextFrames * frameSize, contextFrames * frameSize + real);
  // A model saved before version 2 scores by mean squared error alone, so it skips the mirrored pass.
  let mirrored = predictions;
  if (scorer.calibration !== undefined || scorer.architecture.predictionOffset > 0) {
    mirrorRows(input, frameWidth);
    mirrored = predict(scorer.model, input, shape).slice(contextFrames * frameSize, contextFrames * frameSize + real);
    mirrorRows(mirrored, frameWidth);
  }

  const targets = new Float32Array(real);
  for (let t = 0; t < frames.length; t++) toUnit(frames[t]!, targets, t * frameSize);

  const geometry = scorer.calibration ?? DEFAULT_CELLS;
  const scores = new Float64Array(frames.length);
  const errors = new Float64Array(frames.length);
  const components: FrameComponents[] = [];
  for (let t = 0; t < frames.length; t++) {
    const target = targets.subarray(t * frameSize, (t + 1) * frameSize);
    const map = errorMap(target, predictions.subarray(t * frameSize, (t + 1) * frameSize));
    const mirrorMap = errorMap(target, mirrored.subarray(t * frameSize, (t + 1) * frameSize));
    for (let i = 0; i < frameSize; i++) mirrorMap[i] = map[i]! - mirrorMap[i]!;
    const previous = t > 0 ? frames[t - 1] : history[history.length - 1];
    const frame: FrameComponents = {
      cells: cellErrors(map, frameWidth, frameHeight, geometry.cells.size, geometry.cells.stride),
      mirrorCells: cellErrors(mirrorMap, frameWidth, frameHeight, geometry.mirrorCells.size, geometry.mirrorCells.stride),
      difference: previous === undefined ? Number.NaN : frameDifference(previous, frames[t]!) / (255 * 255),
    };
    components.push(frame);
    errors[t] = meanOf(map);
    scores[t] = scorer.calibration === undefined ? errors[t]! : combinedScore(frame, scorer.calibration);
  }
  return { scores, errors, frames: targets, predictions, components };
}

function meanOf(values: Float32Array): number {
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

/** Squared error of each pixel of frame `t` of a scored clip, for a heat-map thumbnail. */
export function clipErrorMap(clip: ClipScores, t: number, frameSize: number): Float32Array {
  return errorMap(clip.frames.subarray(t * frameSize, (t + 1) * frameSize), clip.predictions.subarray(t * frameSize, (t + 1) * frameSize));
}

/**
 * Returns the squared error per pixel that a thumbnail starts to draw in red. Without
 * calibration it is the threshold, itself a mean squared error. With calibration the threshold
 * counts standard deviations, so the reference is an error that a typical cell of normal video
 * seldom reaches: the median over cells of the cell's mean plus three standard deviations.
 */
export function errorMapReference(scorer: VideoScorer, threshold: number): number {
  const { calibration } = scorer;
  if (calibration === undefined) return threshold;
  const high = calibration.cells.mean.map((mean, i) => mean + 3 * calibration.cells.std[i]!).sort((a, b) => a - b);
  return high[Math.floor(high.length / 2)]!;
}

/**
 * Cuts a stream of frames into consecutive clips of `clipLength` and scores each one as soon as
 * it is complete, keeping the frames that the next clip needs as its history.
 */
export class ClipScorer {
  private clip: Uint8Array[] = [];
  private history: Uint8Array[];

  /** `history` contains the frames before the first one to be pushed, for a scan that resumes mid-video. */
  constructor(
    private readonly scorer: VideoScorer,
    history: readonly Uint8Array[] = [],
  ) {
    this.history = [...history];
  }

  /** Adds the next frame, and returns the scores of its clip when the frame completes one. */
  push(frame: Uint8Array): ClipScores | undefined {
    this.clip.push(frame);
    return this.clip.length < this.scorer.architecture.clipLength ? undefined : this.score();
  }

  /** Scores the frames of an incomplete last clip, if any. */
  finish(): ClipScores | undefined {
    return this.clip.length === 0 ? undefined : this.score();
  }

  private score(): ClipScores {
    const scored = scoreClip(this.scorer, this.clip, this.history);
    const keep = resumeHistoryLength(this.scorer.architecture);
    this.history = [...this.history, ...this.clip].slice(-keep);
    this.clip = [];
    return scored;
  }
}

/** Scores a whole stretch of frames in consecutive clips, as a scan does. */
export function scoreFrames(scorer: VideoScorer, frames: readonly Uint8Array[]): { scores: Float64Array; clips: ClipScores[] } {
  const stream = new ClipScorer(scorer);
  const clips: ClipScores[] = [];
  for (const frame of frames) {
    const clip = stream.push(frame);
    if (clip !== undefined) clips.push(clip);
  }
  const tail = stream.finish();
  if (tail !== undefined) clips.push(tail);

  const scores = new Float64Array(frames.length);
  let offset = 0;
  for (const clip of clips) {
    scores.set(clip.scores, offset);
    offset += clip.scores.length;
  }
  return { scores, clips };
}

/**
 * Reads calibration.json from a model folder. Returns undefined when the folder has none, as
 * for a model saved before version 2, whose scores are then mean squared errors.
 */
export async function readScoreCalibration(modelDir: string): Promise<ScoreCalibration | undefined> {
  const file = path.join(modelDir, CALIBRATION_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DarkroomError('INVALID_INPUT', `${file} cannot be read: ${(error as Error).message}`, { file, cause: error });
  }

  const calibration = JSON.parse(text) as ScoreCalibration;
  const validCells = (cells: ScoreCalibration['cells'] | undefined): boolean =>
    cells !== undefined && Array.isArray(cells.mean) && Array.isArray(cells.std) && cells.mean.length === cells.std.length && cells.size > 0 && cells.stride > 0;
  if (!validCells(calibration.cells) || !validCells(calibration.mirrorCells) || !(calibration.localStd > 0) || !(calibration.mirrorStd > 0) || !(calibration.differenceFloor > 0)) {
    throw new DarkroomError('INVALID_INPUT', `${file} is not a score calibration written by darkroom train video-anomaly; train the model again`, { file });
  }
  return calibration;
}

/** Builds the scorer of a loaded video-anomaly model, with its calibration when the folder has one. */
export async function videoScorerFor(loaded: LoadedModel): Promise<VideoScorer> {
  if (loaded.metadata.task !== 'video-anomaly') {
    throw new DarkroomError('INVALID_INPUT', `The model in ${loaded.dir} was trained for "${loaded.metadata.task}", not for video anomaly scans`);
  }
  const architecture = videoArchitectureFromMetadata(loaded.metadata.architecture);
  const calibration = await readScoreCalibration(loaded.dir);
  return calibration === undefined ? { model: loaded.model, architecture } : { model: loaded.model, architecture, calibration };
}

/** Frames that a scan resuming mid-video must read again before its first new frame: the history, and at least the previous frame for its frame difference. */
export function resumeHistoryLength(architecture: VideoAutoencoderArchitecture): number {
  return Math.max(1, historyLength(architecture));
}
