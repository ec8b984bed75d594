/**
 * Scoring for the video anomaly scanner: per-frame reconstruction error, the clips that score a
 * video, calibration of a threshold on normal video, anomalous segments, and frame-level ROC AUC.
 *
 * A frame's score is its reconstruction error, optionally averaged over the frames before it.
 * Scores are never min-max scaled over the video being scanned, as the regularity score in the
 * video anomaly literature is. A scan streams frames and must decide on each one without the
 * rest, and min-max scaling makes every video look anomalous somewhere.
 */
import { DarkroomError, invalidOption } from '../errors.js';

/**
 * Returns the mean squared error of each frame, for `frameSize` values per frame laid out one
 * frame after another, as a clip [frames, height, width, 1] and its reconstruction are.
 */
export function frameErrors(clip: ArrayLike<number>, reconstruction: ArrayLike<number>, frameSize: number): Float64Array {
  if (!Number.isInteger(frameSize) || frameSize < 1) throw invalidOption('a positive integer', 'frameSize', frameSize);
  if (clip.length !== reconstruction.length || clip.length % frameSize !== 0) {
    throw new DarkroomError(
      'INVALID_INPUT',
      `A clip and its reconstruction need the same whole number of ${frameSize}-value frames, but contain ${clip.length} and ${reconstruction.length} values`,
    );
  }

  const errors = new Float64Array(clip.length / frameSize);
  for (let frame = 0; frame < errors.length; frame++) {
    let sum = 0;
    for (let i = frame * frameSize; i < (frame + 1) * frameSize; i++) {
      const difference = clip[i]! - reconstruction[i]!;
      sum += difference * difference;
    }
    errors[frame] = sum / frameSize;
  }
  return errors;
}

/**
 * Returns the first frame of each clip that scores every frame of a video once: clips of
 * `clipLength` frames at a stride of `clipLength`, with the last clip moved back to end at the
 * last frame. Frames in the overlap keep the score of the earlier clip. Each clip starts from
 * a zero ConvLSTM state, as in training, so the cost is one clip frame per video frame.
 */
export function clipStarts(frameCount: number, clipLength: number): number[] {
  if (!Number.isInteger(clipLength) || clipLength < 1) throw invalidOption('a positive integer', 'clipLength', clipLength);
  if (!Number.isInteger(frameCount) || frameCount < clipLength) {
    throw new DarkroomError('INVALID_INPUT', `A video of ${frameCount} frames is shorter than one clip of ${clipLength} frames`);
  }

  const starts: number[] = [];
  for (let start = 0; start + clipLength <= frameCount; start += clipLength) starts.push(start);
  if (starts[starts.length - 1]! + clipLength < frameCount) starts.push(frameCount - clipLength);
  return starts;
}

/**
 * Returns the mean squared difference between two consecutive frames. Sensor noise keeps it
 * above a floor in live video, so a value far below the smallest one in the training videos
 * marks a frozen feed. Reconstruction error cannot flag that, because a repeated frame is
 * easier to reconstruct than a normal one.
 */
export function frameDifference(previous: ArrayLike<number>, current: ArrayLike<number>): number {
  if (previous.length !== current.length) {
    throw new DarkroomError('INVALID_INPUT', `Consecutive frames need the same size, but contain ${previous.length} and ${current.length} values`);
  }
  let sum = 0;
  for (let i = 0; i < current.length; i++) {
    const difference = current[i]! - previous[i]!;
    sum += difference * difference;
  }
  return sum / current.length;
}

/** Returns the squared error of every pixel of one frame, e.g. for a heat-map thumbnail. */
export function errorMap(frame: ArrayLike<number>, reconstruction: ArrayLike<number>): Float32Array {
  if (frame.length !== reconstruction.length) {
    throw new DarkroomError('INVALID_INPUT', `A frame and its reconstruction need the same size, but contain ${frame.length} and ${reconstruction.length} values`);
  }
  const map = new Float32Array(frame.length);
  for (let i = 0; i < map.length; i++) {
    const difference = frame[i]! - reconstruction[i]!;
    map[i] = difference * difference;
  }
  return map;
}

/**
 * Averages each score with the `window - 1` scores before it (fewer at the start), so that a
 * streaming scan can compute it as frames arrive. A window of 1 returns a copy.
 */
export function smoothScores(scores: ArrayLike<number>, window: number): Float64Array {
  if (!Number.isInteger(window) || window < 1) throw invalidOption('a positive integer', 'the smoothing window', window);
  const smoothed = new Float64Array(scores.length);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) {
    sum += scores[i]!;
    if (i >= window) sum -= scores[i - window]!;
    smoothed[i] = sum / Math.min(i + 1, window);
  }
  return smoothed;
}

/**
 * Returns the p-th percentile (0 to 100) of the scores, interpolating linearly between the two
 * nearest ranks as numpy's default does. Calibrated on the scores of the training videos, a high
 * percentile makes a threshold that flags (100 - p)% of normal frames.
 */
export function percentileThreshold(scores: ArrayLike<number>, p: number): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 100)) throw invalidOption('a number from 0 to 100', 'the percentile', p);
  if (scores.length === 0) throw new DarkroomError('INVALID_INPUT', 'A percentile needs at least one score, but received none');
  const sorted = Float64Array.from(scores).sort();
  if (Number.isNaN(sorted[sorted.length - 1])) throw new DarkroomError('INVALID_INPUT', 'A percentile needs numeric scores, but received NaN');

  const position = (p / 100) * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below]! + (position - below) * (sorted[above]! - sorted[below]!);
}

/** A run of anomalous frames. endFrame is inclusive, and endTime is when that frame ends. */
export interface AnomalySegment {
  readonly startFrame: number;
  readonly endFrame: number;
  readonly startTime: number;
  readonly endTime: number;
  /** The frame with the highest score in the segment, the first one if several tie. */
  readonly peakFrame: number;
  readonly peakScore: number;
}

export interface SegmentOptions {
  /** Segments shorter than this many frames, after merging, are dropped. Default 1. */
  readonly minLength?: number;
  /** Runs separated by at most this many unflagged frames become one segment. Default 0. */
  readonly mergeGap?: number;
}

/**
 * Turns per-frame flags (e.g. score > threshold) into segments. Runs of flagged frames are first
 * merged across short gaps, then short segments are dropped, so that one flickering event is
 * reported once and a lone frame over the threshold is not reported at all.
 */
export function segmentsFromFlags(flags: ArrayLike<boolean | number>, scores: ArrayLike<number>, fps: number, options: SegmentOptions = {}): AnomalySegment[] {
  const { minLength = 1, mergeGap = 0 } = options;
  if (typeof fps !== 'number' || !(fps > 0) || !Number.isFinite(fps)) throw invalidOption('a positive number', 'fps', fps);
  if (!Number.isInteger(minLength) || minLength < 1) throw invalidOption('a positive integer', 'minLength', minLength);
  if (!Number.isInteger(mergeGap) || mergeGap < 0) throw invalidOption('a non-negative integer', 'mergeGap', mergeGap);
  if (flags.length !== scores.length) {
    throw new DarkroomError('INVALID_INPUT', `Segments need one score per flag, but received ${flags.length} flags and ${scores.length} scores`);
  }

  const runs: Array<[number, number]> = [];
  for (let i = 0; i < flags.length; i++) {
    if (!flags[i]) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && i - last[1] - 1 <= mergeGap) last[1] = i;
    else runs.push([i, i]);
  }

  return runs
    .filter(([start, end]) => end - start + 1 >= minLength)
    .map(([start, end]) => {
      let peakFrame = start;
      for (let i = start + 1; i <= end; i++) if (scores[i]! > scores[peakFrame]!) peakFrame = i;
      return { startFrame: start, endFrame: end, startTime: start / fps, endTime: (end + 1) / fps, peakFrame, peakScore: scores[peakFrame]! };
    });
}

/** Compares without subtracting, because Infinity - Infinity is NaN. */
function compareNumbers(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

/**
 * Area under the ROC curve of scores against 0/1 labels (1 = anomalous), computed exactly as
 * the Mann-Whitney U statistic: the probability that a random anomalous frame scores above a
 * random normal one, counting ties as one half. Tied scores get the average of their ranks.
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>): number {
  if (scores.length !== labels.length) {
    throw new DarkroomError('INVALID_INPUT', `ROC AUC needs one label per score, but received ${scores.length} scores and ${labels.length} labels`);
  }
  const order = Array.from({ length: scores.length }, (_, i) => i);
  for (const i of order) {
    if (Number.isNaN(scores[i])) throw new DarkroomError('INVALID_INPUT', `ROC AUC needs numeric scores, but score ${i} is NaN`);
  }
  order.sort((a, b) => compareNumbers(scores[a]!, scores[b]!));

  let positives = 0;
  let positiveRankSum = 0;
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && scores[order[end]!] === scores[order[start]!]) end++;
    // Ranks start at 1, so the tie group start..end-1 shares the rank (start + 1 + end) / 2.
    const rank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) {
      if (labels[order[k]!]) {
        positives++;
        positiveRankSum += rank;
      }
    }
    start = end;
  }

  const negatives = scores.length - positives;
  if (positives === 0 || negatives === 0) {
    throw new DarkroomError('INVALID_INPUT', `ROC AUC needs both normal and anomalous frames, but received ${positives} anomalous of ${scores.length}`);
  }
  const u = positiveRankSum - (positives * (positives + 1)) / 2;
  return u / (positives * negatives);
}
