import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { writeLabelledVideo } from '../src/eval/sample-videos.js';
import { generateSyntheticVideo } from '../src/eval/synthetic-video.js';
import { evaluateVideoAnomaly, formatVideoAnomalyTable, parseLabelsCsv, type VideoEvalResult } from '../src/eval/video-anomaly.js';
import { rocAuc } from '../src/eval/video-scoring.js';
import { createLogger } from '../src/log.js';
import { loadModel, type LoadedModel } from '../src/models/storage.js';
import { DEFAULT_SCAN_OPTIONS, scanOutputPaths, scanVideo } from '../src/scan/scan.js';
import { trainTask } from '../src/train/trainer.js';
import { VIDEO_ANOMALY_TRAINING } from '../src/train/video-anomaly.js';
import { runCli } from './helpers/cli.js';

const TINY = { clipLength: 4, contextFrames: 2, predictionOffset: 1, frameHeight: 24, frameWidth: 32, baseFilters: 4, latentFilters: 4, lstmFilters: 4, bottleneckFilters: 2 };
const log = createLogger('test', () => {});
let dir: string;
let videos: string;
let modelDir: string;
let loaded: LoadedModel;
let result: VideoEvalResult;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-eval-video-'));
  videos = path.join(dir, 'videos');
  await mkdir(videos);
  const size = { width: 64, height: 48, fps: 10 };
  await writeLabelledVideo(path.join(videos, 'normal.avi'), generateSyntheticVideo({ seed: 1, frames: 60, ...size }), false);
  await writeLabelledVideo(path.join(videos, 'test-01.avi'), generateSyntheticVideo({ seed: 2, frames: 80, ...size, anomalies: ['flash'] }), true);
  await writeLabelledVideo(path.join(videos, 'test-02.avi'), generateSyntheticVideo({ seed: 3, frames: 90, ...size, anomalies: ['corrupted'] }), true);

  modelDir = path.join(dir, 'model');
  const options = VIDEO_ANOMALY_TRAINING.resolveOptions({ data: path.join(videos, 'normal.avi'), out: modelDir, epochs: 1, stepsPerEpoch: 2, batchSize: 2, architecture: TINY });
  await trainTask(VIDEO_ANOMALY_TRAINING, options, { log, backend: 'wasm' });
  loaded = await loadModel(modelDir);
  result = await evaluateVideoAnomaly(loaded, { data: videos }, log);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function csvScores(csv: string): Promise<number[]> {
  return (await readFile(csv, 'utf8')).trim().split('\n').slice(1).map((line) => Number(line.split(',')[2]));
}

describe('evaluateVideoAnomaly', () => {
  it('evaluates the labelled videos and skips the others', () => {
    expect(result.rows.map((row) => [row.video, row.split, row.frames])).toEqual([
      ['test-01.avi', 'unseen', 80],
      ['test-02.avi', 'unseen', 90],
    ]);
    expect(result.skipped).toEqual(['normal.avi']);
  });

  it('counts the labelled anomalous frames', async () => {
    for (const row of result.rows) {
      const { labels } = parseLabelsCsv(await readFile(path.join(videos, row.video.replace('.avi', '.labels.csv')), 'utf8'), row.video);
      expect(row.anomalousFrames).toBe(labels.reduce((sum, label) => sum + label, 0));
    }
  });

  it('measures the ROC AUC of the scores a scan writes', async () => {
    for (const row of result.rows) {
      const video = path.join(videos, row.video);
      const outDir = path.join(dir, 'scan');
      await scanVideo(video, loaded, { ...DEFAULT_SCAN_OPTIONS, outDir, log, progress: false });
      const { labels } = parseLabelsCsv(await readFile(video.replace('.avi', '.labels.csv'), 'utf8'), row.video);
      const auc = rocAuc(await csvScores(scanOutputPaths(video, outDir).csv), labels);

      expect(row.auc).toBeGreaterThanOrEqual(0);
      expect(row.auc).toBeLessThanOrEqual(1);
      // The CSV keeps 6 significant digits, which can at most turn a few near-ties into ties.
      expect(Math.abs(row.auc! - auc)).toBeLessThan(0.01);
    }
  });

  it('measures each event kind present', () => {
    expect(Object.keys(result.rows[0]!.aucByKind)).toEqual(['flash']);
    expect(Object.keys(result.rows[1]!.aucByKind)).toEqual(['corrupted']);
    expect(Object.keys(result.meanAucByKind)).toEqual(['flash', 'corrupted']);
    expect(result.meanAuc).toBeCloseTo((result.rows[0]!.auc! + result.rows[1]!.auc!) / 2, 12);
  });

  it('rejects labels for another number of frames', async () => {
    const other = path.join(dir, 'short-labels');
    await mkdir(other);
    await writeLabelledVideo(path.join(other, 'clip.avi'), generateSyntheticVideo({ seed: 4, frames: 20, width: 64, height: 48 }), true);
    await writeFile(path.join(other, 'clip.labels.csv'), 'frame,label,event\n0,0,\n1,1,flash\n');

    await expect(evaluateVideoAnomaly(loaded, { data: other }, log)).rejects.toThrow('clip.avi has 20 frames but clip.labels.csv labels 2');
  });
});

describe('formatVideoAnomalyTable', () => {
  it('prints a row per video, the means and the skipped videos', () => {
    const lines = formatVideoAnomalyTable(result).split('\n');

    expect(lines[0]).toBe(`Frame-level ROC AUC of ${modelDir}; per kind: that kind's frames against the normal frames`);
    expect(lines[1]!.split(/ {2,}/)).toEqual(['video', 'split', 'frames', 'anomalous', 'ROC AUC', 'flash', 'corrupted', 'ms/frame']);
    expect(lines[3]).toMatch(/^test-01\.avi {2}unseen +80 +\d+ +[01]\.\d{3} +[01]\.\d{3} +- +\d+\.\d{2}$/);
    expect(lines[4]).toMatch(/^test-02\.avi {2}unseen +90 +\d+ +[01]\.\d{3} +- +[01]\.\d{3} +\d+\.\d{2}$/);
    expect(lines[6]).toMatch(/^mean +[01]\.\d{3} +[01]\.\d{3} +[01]\.\d{3}/);
    expect(lines[7]).toBe('Skipped (no <name>.labels.csv): normal.avi');
  });
});

describe('parseLabelsCsv', () => {
  it('reads labels and event kinds', () => {
    const { labels, kinds } = parseLabelsCsv('frame,label,event\n0,0,\n1,1,flash\n', 'a.labels.csv');
    expect(Array.from(labels)).toEqual([0, 1]);
    expect(kinds).toEqual(['', 'flash']);
  });

  it('rejects another header', () => {
    expect(() => parseLabelsCsv('frame,anomalous\n0,0\n', 'a.labels.csv')).toThrow('a.labels.csv: expected the header "frame,label,event" but found "frame,anomalous"');
  });

  it('rejects frames out of order', () => {
    expect(() => parseLabelsCsv('frame,label,event\n0,0,\n2,0,\n', 'a.labels.csv')).toThrow('a.labels.csv line 3: expected "1,<0 or 1>,<event>" but found "2,0,"');
  });
});

describe('darkroom eval video-anomaly', () => {
  it('prints the result as JSON', async () => {
    const cli = await runCli(['eval', 'video-anomaly', '--data', videos, '--model', modelDir, '--json']);

    expect(cli.code).toBe(0);
    const printed = JSON.parse(cli.stdout) as VideoEvalResult;
    expect(printed.rows.map((row) => row.auc)).toEqual(result.rows.map((row) => row.auc));
    expect(printed.skipped).toEqual(['normal.avi']);
  });
});
