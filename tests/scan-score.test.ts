import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { combinedScore, fitScoreCalibration } from '../src/eval/video-scoring.js';
import { generateSyntheticVideo } from '../src/eval/synthetic-video.js';
import { buildVideoAutoencoder, type VideoAutoencoderArchitecture } from '../src/models/video-anomaly.js';
import { CALIBRATION_FILE, ClipScorer, DEFAULT_CELLS, readScoreCalibration, scoreClip, scoreFrames, type VideoScorer } from '../src/scan/score.js';
import { randomizeWeights } from './helpers/models.js';

const TINY: VideoAutoencoderArchitecture = Object.freeze({
  clipLength: 4,
  contextFrames: 2,
  predictionOffset: 1,
  frameHeight: 32,
  frameWidth: 32,
  baseFilters: 2,
  latentFilters: 2,
  lstmFilters: 2,
  bottleneckFilters: 1,
});
let frames: Uint8Array[];
let scorer: VideoScorer;
let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-score-'));
  frames = generateSyntheticVideo({ seed: 5, frames: 22, width: 32, height: 32 }).frames;
  const model = buildVideoAutoencoder(TINY, 2);
  randomizeWeights(model, 3, 0.2);
  scorer = { model, architecture: TINY };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('scoreFrames', () => {
  it('scores every frame, the padded tail clip included', () => {
    const { scores, clips } = scoreFrames(scorer, frames);
    expect(scores).toHaveLength(22);
    expect(clips.map((clip) => clip.scores.length)).toEqual([4, 4, 4, 4, 4, 2]);
  });

  it('scores mean squared errors without calibration', () => {
    const { scores, clips } = scoreFrames(scorer, frames);
    expect(Array.from(scores.subarray(0, 4))).toEqual(Array.from(clips[0]!.errors));
  });

  it('measures frame differences from the previous frame', () => {
    const repeated = [frames[0]!, frames[0]!, frames[1]!, frames[2]!];
    const differences = scoreClip(scorer, repeated).components.map((frame) => frame.difference);
    expect(differences[0]).toBeNaN();
    expect(differences[1]).toBe(0);
    expect(differences[2]).toBeGreaterThan(0);
  });

  it('takes cells at the default geometry', () => {
    const [frame] = scoreClip(scorer, [frames[0]!]).components;
    // 32x32 frames: 4x4 cells of 8 every 8, and 3x3 cells of 16 every 8.
    expect(frame!.cells).toHaveLength(16);
    expect(frame!.mirrorCells).toHaveLength(9);
  });
});

describe('ClipScorer', () => {
  it('resumes at a clip boundary with the same scores', () => {
    const whole = scoreFrames(scorer, frames).scores;
    const stream = new ClipScorer(scorer, frames.slice(5, 8));
    const resumed: number[] = [];
    for (const frame of frames.slice(8)) resumed.push(...(stream.push(frame)?.scores ?? []));
    resumed.push(...(stream.finish()?.scores ?? []));
    expect(resumed).toEqual(Array.from(whole.subarray(8)));
  });

  it('returns nothing until a clip is complete', () => {
    const stream = new ClipScorer(scorer);
    expect(stream.push(frames[0]!)).toBeUndefined();
    expect(stream.finish()?.scores).toHaveLength(1);
    expect(stream.finish()).toBeUndefined();
  });
});

describe('calibrated scores', () => {
  it('combine the components of each frame', () => {
    const plain = scoreFrames(scorer, frames).clips;
    const calibration = fitScoreCalibration(
      plain.flatMap((clip) => clip.components),
      DEFAULT_CELLS,
    );
    const clip = scoreFrames({ ...scorer, calibration }, frames).clips[1]!;
    for (let t = 0; t < 4; t++) expect(clip.scores[t]).toBe(combinedScore(clip.components[t]!, calibration));
  });

  it('come from calibration.json beside the model', async () => {
    const calibration = fitScoreCalibration(
      [
        { cells: [1, 2], mirrorCells: [0], difference: Number.NaN },
        { cells: [3, 2], mirrorCells: [1], difference: 1e-3 },
        { cells: [2, 2], mirrorCells: [2], difference: 2e-3 },
      ],
      DEFAULT_CELLS,
    );
    await writeFile(path.join(dir, CALIBRATION_FILE), JSON.stringify(calibration));
    expect(await readScoreCalibration(dir)).toEqual(calibration);
  });

  it('are absent without calibration.json', async () => {
    expect(await readScoreCalibration(path.join(dir, 'missing'))).toBeUndefined();
  });

  it('reject a file that is not a calibration', async () => {
    const other = path.join(dir, 'other');
    await mkdir(other);
    await writeFile(path.join(other, CALIBRATION_FILE), '{"cellMean": [1]}');
    await expect(readScoreCalibration(other)).rejects.toThrow(`${path.join(other, CALIBRATION_FILE)} is not a score calibration written by darkroom train video-anomaly; train the model again`);
  });
});
