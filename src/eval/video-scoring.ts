/**
 * Scoring for the video anomaly scanner: per-frame and per-cell errors of the model's output, the
 * clips that score a video, calibration of the score and its threshold on normal video, anomalous
 * segments, and frame-level ROC AUC.
 *
 * A frame's score is `combinedScore`, in standard deviations of normal video (scan/score.ts puts
 * it together). Scores are never min-max scaled over the video being scanned, as the regularity score in the
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

/**
 * Returns the mean of a per-pixel error map over square cells of `size` pixels placed every
 * `stride` pixels, row by row. Cells that would cross the right or bottom edge are left out.
 * A small object that the model gets wrong fills one cell, where it shows clearly, while in the
 * mean over the whole frame it is lost among the normal errors of everything else in view.
 */
export function cellErrors(map: ArrayLike<number>, width: number, height: number, size: number, stride: number): Float64Array {
  if (map.length !== width * height) throw new DarkroomError('INVALID_INPUT', `An error map of ${width}x${height} needs ${width * height} values, but contains ${map.length}`);
  if (!Number.isInteger(size) || size < 1 || size > Math.min(width, height)) throw invalidOption(`an integer from 1 to ${Math.min(width, height)}`, 'the cell size', size);
  if (!Number.isInteger(stride) || stride < 1) throw invalidOption('a positive integer', 'the cell stride', stride);

  const columns = Math.floor((width - size) / stride) + 1;
  const rows = Math.floor((height - size) / stride) + 1;
  const cells = new Float64Array(columns * rows);
  for (let row = 0; row < rows; row++) {
    for (let column = 0; column < columns; column++) {
      let sum = 0;
      for (let y = row * stride; y < row * stride + size; y++) {
        for (let x = column * stride; x < column * stride + size; x++) sum += map[y * width + x]!;
      }
      cells[row * columns + column] = sum / (size * size);
    }
  }
  return cells;
}

/** Square cells of an error map (see `cellErrors`) with each cell's mean and standard deviation on normal video. */
export interface CellStatistics {
  /** Side in pixels of the cells, at the model's frame size. */
  readonly size: number;
  /** Pixels between the starts of neighbouring cells. */
  readonly stride: number;
  /** Mean of each cell over the calibration frames, in the order cellErrors returns. */
  readonly mean: readonly number[];
  /** Standard deviation of each cell, floored as `fitScoreCalibration` describes. */
  readonly std: readonly number[];
}

/** Inputs of one frame's score. */
export interface FrameComponents {
  /** Cell errors of the frame's prediction error map, with the calibration's `cells` geometry. */
  readonly cells: ArrayLike<number>;
  /**
   * Cell errors of the prediction error minus those of the error of the mirrored clip's
   * prediction, mirrored back, with the `mirrorCells` geometry. See score.ts for why.
   */
  readonly mirrorCells: ArrayLike<number>;
  /** Mean squared difference from the frame before, in [0, 1] units; NaN for a video's first frame. */
  readonly difference: number;
}

/** Statistics of normal video that turn a frame's components into a score. */
export interface ScoreCalibration {
  readonly cells: CellStatistics;
  readonly mirrorCells: CellStatistics;
  /** Mean and standard deviation over the calibration frames of the local score (see `localScore`) of `cells`. */
  readonly localMean: number;
  readonly localStd: number;
  /** The same for `mirrorCells`. */
  readonly mirrorMean: number;
  readonly mirrorStd: number;
  /** Smallest positive mean squared difference between consecutive calibration frames. */
  readonly differenceFloor: number;
  /** Standard deviation of the natural log of those differences. */
  readonly differenceLogStd: number;
}

/** Returns the largest z-score of a frame's cell values against each cell's mean and standard deviation on normal video. */
export function localScore(cells: ArrayLike<number>, statistics: Pick<CellStatistics, 'mean' | 'std'>): number {
  if (cells.length !== statistics.mean.length || cells.length !== statistics.std.length) {
    throw new DarkroomError('INVALID_INPUT', `A frame has ${cells.length} cells, but the calibration has ${statistics.mean.length} means and ${statistics.std.length} standard deviations`);
  }
  let peak = -Infinity;
  for (let i = 0; i < cells.length; i++) peak = Math.max(peak, (cells[i]! - statistics.mean[i]!) / statistics.std[i]!);
  return peak;
}

/**
 * Returns how far a frame difference lies below the smallest one of normal video, in standard
 * deviations of the log difference. It is negative for ordinary motion and sensor noise, and
 * positive for a frame that repeats the one before, as a frozen feed does. A difference of 0 counts as one
 * thousandth of the floor, so an exact repeat gets a finite score. NaN, for the first frame of
 * a video, gives -Infinity.
 */
export function stillScore(difference: number, differenceFloor: number, differenceLogStd: number): number {
  if (Number.isNaN(difference)) return -Infinity;
  return (Math.log(differenceFloor) - Math.log(Math.max(difference, differenceFloor * 1e-3))) / differenceLogStd;
}

/**
 * Combines a frame's components into its anomaly score. The local scores of the prediction error
 * and of the mirror contrast, each standardised by its mean and standard deviation on normal
 * video, are added, because each is weak alone and both rise for most anomalies. The still score
 * is compared with that sum instead of added, because a frozen picture lowers the prediction error.
 */
export function combinedScore(frame: FrameComponents, calibration: ScoreCalibration): number {
  const local = (localScore(frame.cells, calibration.cells) - calibration.localMean) / calibration.localStd;
  const mirror = (localScore(frame.mirrorCells, calibration.mirrorCells) - calibration.mirrorMean) / calibration.mirrorStd;
  return Math.max(local + mirror, stillScore(frame.difference, calibration.differenceFloor, calibration.differenceLogStd));
}

/**
 * Fits each cell's mean and standard deviation. A standard deviation is floored at the median
 * over all cells, because a cell that hardly changes in normal video, such as a clipped black
 * corner or a lawn nobody crossed during training, would otherwise turn any movement there into
 * a z-score in the thousands.
 */
function fitCells(frameCells: readonly ArrayLike<number>[], geometry: { readonly size: number; readonly stride: number }): CellStatistics {
  const count = frameCells[0]!.length;
  const mean = new Array<number>(count).fill(0);
  const variance = new Array<number>(count).fill(0);
  for (const cells of frameCells) {
    if (cells.length !== count) throw new DarkroomError('INVALID_INPUT', `Every calibration frame needs ${count} cells, but one has ${cells.length}`);
    for (let i = 0; i < count; i++) mean[i]! += cells[i]! / frameCells.length;
  }
  for (const cells of frameCells) {
    for (let i = 0; i < count; i++) variance[i]! += (cells[i]! - mean[i]!) ** 2 / frameCells.length;
  }
  const rawStd = variance.map(Math.sqrt);
  const medianStd = percentileThreshold(rawStd, 50);
  return { size: geometry.size, stride: geometry.stride, mean, std: rawStd.map((std) => Math.max(std, medianStd, Number.MIN_VALUE)) };
}

function meanAndStd(values: readonly number[]): { mean: number; std: number } {
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  const std = Math.sqrt(values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / values.length);
  return { mean, std: Math.max(std, Number.MIN_VALUE) };
}

/**
 * Fits the score calibration to the components of normal frames. Frame differences of 0,
 * repeated frames in the normal video itself, do not set the floor.
 */
export function fitScoreCalibration(
  frames: readonly FrameComponents[],
  geometry: { readonly cells: { readonly size: number; readonly stride: number }; readonly mirrorCells: { readonly size: number; readonly stride: number } },
): ScoreCalibration {
  if (frames.length < 2) throw new DarkroomError('INVALID_INPUT', `Calibration needs at least 2 frames, but received ${frames.length}`);
  const cells = fitCells(
    frames.map((frame) => frame.cells),
    geometry.cells,
  );
  const mirrorCells = fitCells(
    frames.map((frame) => frame.mirrorCells),
    geometry.mirrorCells,
  );
  const local = meanAndStd(frames.map((frame) => localScore(frame.cells, cells)));
  const mirror = meanAndStd(frames.map((frame) => localScore(frame.mirrorCells, mirrorCells)));

  const positive = frames.map((frame) => frame.difference).filter((difference) => difference > 0);
  if (positive.length < 2) throw new DarkroomError('INVALID_INPUT', `Calibration needs at least 2 frames that differ from the frame before, but received ${positive.length}`);
  const logs = meanAndStd(positive.map(Math.log));

  return {
    cells,
    mirrorCells,
    localMean: local.mean,
    localStd: local.std,
    mirrorMean: mirror.mean,
    mirrorStd: mirror.std,
    differenceFloor: Math.min(...positive),
    differenceLogStd: logs.std,
  };
}
