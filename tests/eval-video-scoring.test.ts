import { describe, expect, it } from 'vitest';

import {
  cellErrors,
  clipStarts,
  combinedScore,
  errorMap,
  fitScoreCalibration,
  frameDifference,
  frameErrors,
  localScore,
  percentileThreshold,
  rocAuc,
  type ScoreCalibration,
  segmentsFromFlags,
  smoothScores,
  stillScore,
} from '../src/eval/video-scoring.js';

describe('frameErrors', () => {
  it('returns the mean squared error of each frame', () => {
    const clip = [0, 0, 1, 1, 0.5, 0.5];
    const reconstruction = [0, 1, 1, 1, 0, 0.5];
    expect(Array.from(frameErrors(clip, reconstruction, 2))).toEqual([0.5, 0, 0.125]);
  });

  it('rejects a clip that is not whole frames', () => {
    expect(() => frameErrors([0, 0, 0], [0, 0, 0], 2)).toThrow('A clip and its reconstruction need the same whole number of 2-value frames, but contain 3 and 3 values');
  });
});

describe('clipStarts', () => {
  it('tiles a whole number of clips', () => {
    expect(clipStarts(24, 8)).toEqual([0, 8, 16]);
  });

  it('moves the last clip back to the last frame', () => {
    expect(clipStarts(21, 8)).toEqual([0, 8, 13]);
  });

  it('takes a video of exactly one clip', () => {
    expect(clipStarts(8, 8)).toEqual([0]);
  });

  it('rejects a video shorter than a clip', () => {
    expect(() => clipStarts(5, 8)).toThrow('A video of 5 frames is shorter than one clip of 8 frames');
  });
});

describe('frameDifference', () => {
  it('returns the mean squared difference', () => {
    expect(frameDifference([0, 0.5, 1, 1], [0.5, 0.5, 1, 0])).toBe(0.3125);
  });

  it('returns 0 for a repeated frame', () => {
    expect(frameDifference([0.2, 0.7], [0.2, 0.7])).toBe(0);
  });
});

describe('errorMap', () => {
  it('returns the squared error of each pixel', () => {
    expect(Array.from(errorMap([0.5, 0.25], [0, 0.75]))).toEqual([0.25, 0.25]);
  });
});

describe('smoothScores', () => {
  it('averages each score with the ones before it', () => {
    expect(Array.from(smoothScores([3, 6, 9, 0], 2))).toEqual([3, 4.5, 7.5, 4.5]);
    expect(Array.from(smoothScores([3, 6, 9, 0], 3))).toEqual([3, 4.5, 6, 5]);
  });

  it('copies the scores for a window of 1', () => {
    expect(Array.from(smoothScores([3, 6], 1))).toEqual([3, 6]);
  });

  it('rejects a window of 0', () => {
    expect(() => smoothScores([1], 0)).toThrow('Expected a positive integer for the smoothing window but received 0');
  });
});

describe('percentileThreshold', () => {
  it.each([
    [0, 1],
    [25, 2],
    [50, 3],
    [90, 4.6],
    [100, 5],
  ])('interpolates between ranks: p%d', (p, expected) => {
    expect(percentileThreshold([5, 1, 4, 2, 3], p)).toBeCloseTo(expected, 12);
  });

  it('returns the only score of one', () => {
    expect(percentileThreshold([7], 99)).toBe(7);
  });

  it('rejects a percentile over 100', () => {
    expect(() => percentileThreshold([1, 2], 101)).toThrow('Expected a number from 0 to 100 for the percentile but received 101');
  });

  it('rejects no scores', () => {
    expect(() => percentileThreshold([], 99)).toThrow('A percentile needs at least one score, but received none');
  });
});

describe('segmentsFromFlags', () => {
  const flags = [0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0];
  const scores = [0, 0.5, 0.9, 0, 0, 0.7, 0.1, 0.6, 0.8, 0.8, 0];
  const spans = (segments: ReturnType<typeof segmentsFromFlags>) => segments.map((segment) => [segment.startFrame, segment.endFrame]);

  it('reports each run of flagged frames', () => {
    expect(segmentsFromFlags(flags, scores, 10)).toEqual([
      { startFrame: 1, endFrame: 2, startTime: 0.1, endTime: 0.3, peakFrame: 2, peakScore: 0.9 },
      { startFrame: 5, endFrame: 5, startTime: 0.5, endTime: 0.6, peakFrame: 5, peakScore: 0.7 },
      { startFrame: 7, endFrame: 9, startTime: 0.7, endTime: 1, peakFrame: 8, peakScore: 0.8 },
    ]);
  });

  it('merges runs across gaps up to mergeGap', () => {
    expect(spans(segmentsFromFlags(flags, scores, 10, { mergeGap: 1 }))).toEqual([
      [1, 2],
      [5, 9],
    ]);
    expect(spans(segmentsFromFlags(flags, scores, 10, { mergeGap: 2 }))).toEqual([[1, 9]]);
  });

  it('drops segments shorter than minLength after merging', () => {
    expect(spans(segmentsFromFlags(flags, scores, 10, { minLength: 2 }))).toEqual([
      [1, 2],
      [7, 9],
    ]);
    expect(spans(segmentsFromFlags(flags, scores, 10, { minLength: 5, mergeGap: 1 }))).toEqual([[5, 9]]);
  });

  it('returns no segments without flags', () => {
    expect(segmentsFromFlags([false, false], [1, 2], 25)).toEqual([]);
  });

  it('rejects fps of 0', () => {
    expect(() => segmentsFromFlags([1], [1], 0)).toThrow('Expected a positive number for fps but received 0');
  });
});

describe('rocAuc', () => {
  it.each([
    { name: 'perfect', scores: [0.1, 0.2, 0.8, 0.9], labels: [0, 0, 1, 1], expected: 1 },
    { name: 'inverted', scores: [0.1, 0.2, 0.8, 0.9], labels: [1, 1, 0, 0], expected: 0 },
    { name: 'all tied', scores: [0.5, 0.5, 0.5, 0.5], labels: [0, 1, 0, 1], expected: 0.5 },
    // The positive 0.4 beats 0.1 and ties 0.4 (one half), and 0.8 beats both: 3.5 of 4 pairs.
    { name: 'one tie', scores: [0.1, 0.4, 0.4, 0.8], labels: [0, 0, 1, 1], expected: 0.875 },
    // 0.3 beats 0.1 and 0.2 but not 0.5, and 0.7 beats all three: 5 of 6 pairs.
    { name: 'unsorted', scores: [0.3, 0.1, 0.7, 0.5, 0.2], labels: [1, 0, 1, 0, 0], expected: 5 / 6 },
    // Infinity beats -Infinity and 1 and ties Infinity: 2.5 of 3 pairs.
    { name: 'infinite', scores: [-Infinity, 1, Infinity, Infinity], labels: [0, 0, 1, 0], expected: 2.5 / 3 },
  ])('computes the Mann-Whitney AUC: $name', ({ scores, labels, expected }) => {
    expect(rocAuc(scores, labels)).toBeCloseTo(expected, 12);
  });

  it('takes boolean labels', () => {
    expect(rocAuc([1, 2], [false, true])).toBe(1);
  });

  it('rejects labels of one class', () => {
    expect(() => rocAuc([1, 2], [0, 0])).toThrow('ROC AUC needs both normal and anomalous frames, but received 0 anomalous of 2');
  });

  it('rejects NaN scores', () => {
    expect(() => rocAuc([1, NaN], [0, 1])).toThrow('ROC AUC needs numeric scores, but score 1 is NaN');
  });
});

describe('cellErrors', () => {
  const map = [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 2, 2, 0, 0, 2, 4];

  it('averages tiled cells row by row', () => {
    expect(Array.from(cellErrors(map, 4, 4, 2, 2))).toEqual([1, 0, 0, 2.5]);
  });

  it('overlaps cells with a stride below their size', () => {
    expect(Array.from(cellErrors(map, 4, 4, 3, 1))).toEqual([6 / 9, 6 / 9, 6 / 9, 11 / 9]);
  });

  it('leaves out cells that cross the edge', () => {
    expect(Array.from(cellErrors([1, 2, 3, 4, 5, 6], 3, 2, 2, 2))).toEqual([3]);
  });

  it('rejects a map of the wrong size', () => {
    expect(() => cellErrors([0, 0, 0], 2, 2, 1, 1)).toThrow('An error map of 2x2 needs 4 values, but contains 3');
  });

  it('rejects a cell larger than the map', () => {
    expect(() => cellErrors(map, 4, 4, 5, 1)).toThrow('Expected an integer from 1 to 4 for the cell size but received 5');
  });
});

describe('localScore', () => {
  it('returns the largest z-score', () => {
    expect(localScore([3, 1], { mean: [1, 1], std: [2, 0.5] })).toBe(1);
  });

  it('rejects statistics of another cell count', () => {
    expect(() => localScore([1, 2], { mean: [1], std: [1] })).toThrow('A frame has 2 cells, but the calibration has 1 means and 1 standard deviations');
  });
});

describe('stillScore', () => {
  it('is 0 at the floor', () => {
    expect(stillScore(1e-4, 1e-4, 0.5)).toBe(0);
  });

  it('is negative above the floor', () => {
    expect(stillScore(Math.E * 1e-4, 1e-4, 0.5)).toBeCloseTo(-2, 12);
  });

  it('scores an exact repeat as a thousandth of the floor', () => {
    expect(stillScore(0, 1e-4, 0.5)).toBeCloseTo(Math.log(1000) / 0.5, 12);
  });

  it('ignores the first frame of a video', () => {
    expect(stillScore(Number.NaN, 1e-4, 0.5)).toBe(-Infinity);
  });
});

describe('combinedScore', () => {
  const calibration: ScoreCalibration = {
    cells: { size: 1, stride: 1, mean: [1, 1], std: [2, 0.5] },
    mirrorCells: { size: 2, stride: 1, mean: [0], std: [0.5] },
    localMean: 0.5,
    localStd: 0.25,
    mirrorMean: 1,
    mirrorStd: 2,
    differenceFloor: 1e-4,
    differenceLogStd: 0.5,
  };

  it('adds the standardised local and mirror scores', () => {
    // Local: (max(1, 0) - 0.5) / 0.25 = 2. Mirror: ((1.5 - 0) / 0.5 - 1) / 2 = 1.
    expect(combinedScore({ cells: [3, 1], mirrorCells: [1.5], difference: 2e-4 }, calibration)).toBe(3);
  });

  it('takes the still score of a repeated frame', () => {
    expect(combinedScore({ cells: [3, 1], mirrorCells: [1.5], difference: 0 }, calibration)).toBeCloseTo(Math.log(1000) / 0.5, 12);
  });
});

describe('fitScoreCalibration', () => {
  const calibration = fitScoreCalibration(
    [
      { cells: [0, 2], mirrorCells: [1], difference: Number.NaN },
      { cells: [2, 2], mirrorCells: [2], difference: 1e-4 },
      { cells: [4, 2], mirrorCells: [3], difference: 4e-4 },
      { cells: [2, 2], mirrorCells: [2], difference: 0 },
    ],
    { cells: { size: 8, stride: 8 }, mirrorCells: { size: 16, stride: 8 } },
  );
  const deviation = Math.sqrt(2);

  it('stores the cell geometry', () => {
    expect([calibration.cells.size, calibration.cells.stride, calibration.mirrorCells.size, calibration.mirrorCells.stride]).toEqual([8, 8, 16, 8]);
  });

  it('fits the mean of each cell', () => {
    expect(calibration.cells.mean).toEqual([2, 2]);
    expect(calibration.mirrorCells.mean).toEqual([2]);
  });

  it('floors a constant cell at the median deviation', () => {
    expect(calibration.cells.std[0]).toBeCloseTo(deviation, 12);
    expect(calibration.cells.std[1]).toBeCloseTo(deviation / 2, 12);
  });

  it('fits the mean and deviation of both local scores', () => {
    // Local scores: 0, 0, sqrt(2) and 0. Mirror scores: -1/sqrt(0.5), 0, 1/sqrt(0.5) and 0.
    expect(calibration.localMean).toBeCloseTo(deviation / 4, 12);
    expect(calibration.localStd).toBeCloseTo(Math.sqrt(3 / 8), 12);
    expect(calibration.mirrorMean).toBeCloseTo(0, 12);
    expect(calibration.mirrorStd).toBeCloseTo(1, 12);
  });

  it('takes the floor from positive frame differences only', () => {
    expect(calibration.differenceFloor).toBe(1e-4);
    expect(calibration.differenceLogStd).toBeCloseTo(Math.log(2), 12);
  });

  it('rejects a single frame', () => {
    expect(() => fitScoreCalibration([{ cells: [1], mirrorCells: [1], difference: 1 }], DEFAULT_GEOMETRY)).toThrow('Calibration needs at least 2 frames, but received 1');
  });

  it('rejects normal video that never moves', () => {
    const still = { cells: [1], mirrorCells: [1], difference: 0 };
    expect(() => fitScoreCalibration([still, still], DEFAULT_GEOMETRY)).toThrow('Calibration needs at least 2 frames that differ from the frame before, but received 0');
  });
});

const DEFAULT_GEOMETRY = { cells: { size: 1, stride: 1 }, mirrorCells: { size: 1, stride: 1 } };
