import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { generateSyntheticVideo } from '../src/eval/synthetic-video.js';
import { createLogger } from '../src/log.js';
import { writeVideo } from '../src/media/video.js';
import { buildVideoAutoencoder, type VideoAutoencoderArchitecture } from '../src/models/video-anomaly.js';
import { loadModel, type LoadedModel, saveModel } from '../src/models/storage.js';
import type { ScanReport } from '../src/scan/report.js';
import { DEFAULT_SCAN_OPTIONS, scanOutputPaths, scanVideo, type ScanOptions } from '../src/scan/scan.js';
import { makeProject, runCli, startCli } from './helpers/cli.js';
import { denoiseMetadata, randomizeWeights } from './helpers/models.js';

const TINY: VideoAutoencoderArchitecture = Object.freeze({
  clipLength: 4,
  contextFrames: 2,
  predictionOffset: 1,
  frameHeight: 24,
  frameWidth: 32,
  baseFilters: 4,
  latentFilters: 4,
  lstmFilters: 4,
  bottleneckFilters: 2,
});
const log = createLogger('test', () => {});
let dir: string;
let video: string;
let loaded: LoadedModel;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-scan-'));

  const synthetic = generateSyntheticVideo({ seed: 3, frames: 80, width: 64, height: 48, fps: 10, anomalies: ['flash'] });
  video = path.join(dir, 'yard.avi');
  const writer = await writeVideo(video, { width: 64, height: 48, fps: 10, channels: 1 });
  for (const frame of synthetic.frames) await writer.write(frame);
  await writer.close();

  const model = buildVideoAutoencoder(TINY, 1);
  randomizeWeights(model, 5, 0.2);
  await saveModel(
    model,
    path.join(dir, 'model'),
    denoiseMetadata({ task: 'video-anomaly', sizeMultiple: 1, inputChannels: 1, architecture: { ...TINY }, inference: { threshold: 1, percentile: 99.5, clipLength: 4 } }),
  );
  loaded = await loadModel(path.join(dir, 'model'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(outDir: string, extra: Partial<ScanOptions> = {}): ScanOptions {
  return { ...DEFAULT_SCAN_OPTIONS, outDir, log, progress: false, ...extra };
}

async function readScores(csv: string): Promise<number[]> {
  const lines = (await readFile(csv, 'utf8')).trim().split('\n');
  return lines.slice(1).map((line) => Number(line.split(',')[2]));
}

describe('scanVideo', () => {
  it('writes one CSV row per frame, a report and a plot', async () => {
    const outDir = path.join(dir, 'plain');
    const result = await scanVideo(video, loaded, options(outDir));

    const paths = scanOutputPaths(video, outDir);
    const csv = (await readFile(paths.csv, 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('frame,time_s,score,anomalous');
    expect(csv).toHaveLength(81);
    expect(csv[11]).toMatch(/^10,1\.000,[0-9.e-]+,0$/);
    const report = JSON.parse(await readFile(paths.report, 'utf8')) as ScanReport;
    expect(report.frames).toMatchObject({ decoded: 80, expected: 80, lost: 0, anomalous: 0 });
    expect(report.threshold).toEqual({ value: 1, method: "99.5th percentile of the per-frame scores of the frames the model trained on" });
    expect(report.segments).toEqual([]);
    expect((await sharp(paths.plot).metadata()).format).toBe('png');
    expect(result.outputs).toEqual([paths.csv, paths.plot, paths.report]);
  });

  it('reports segments over the threshold with a thumbnail each', async () => {
    const scores = await readScores(scanOutputPaths(video, path.join(dir, 'plain')).csv);
    const threshold = [...scores].sort((a, b) => a - b)[Math.floor(scores.length * 0.8)];
    const outDir = path.join(dir, 'segments');

    const result = await scanVideo(video, loaded, options(outDir, { threshold, minSegmentFrames: 1, mergeGapFrames: 0 }));

    const report = result.report!;
    expect(report.segments.length).toBeGreaterThan(0);
    expect(report.threshold.method).toBe('given with --threshold');
    for (const [index, segment] of report.segments.entries()) {
      expect(segment.peakScore).toBeGreaterThan(threshold);
      expect(segment.thumbnail).toBe(`yard.avi.anomaly-${String(index + 1).padStart(2, '0')}.jpg`);
      const thumbnail = await sharp(path.join(outDir, segment.thumbnail)).metadata();
      expect([thumbnail.format, thumbnail.width, thumbnail.height]).toEqual(['jpeg', 64, 48 + 22]);
    }
    const flagged = (await readFile(scanOutputPaths(video, outDir).csv, 'utf8')).trim().split('\n').slice(1).filter((line) => line.endsWith(',1'));
    expect(flagged).toHaveLength(report.frames.anomalous);
  });

  it('removes thumbnails of an earlier scan with more segments', async () => {
    const outDir = path.join(dir, 'segments');
    const before = (await readdir(outDir)).filter((name) => name.includes('.anomaly-'));
    expect(before.length).toBeGreaterThan(0);

    const result = await scanVideo(video, loaded, options(outDir));

    expect(result.report!.segments).toEqual([]);
    expect((await readdir(outDir)).filter((name) => name.includes('.anomaly-'))).toEqual([]);
  });

  it('resumes a stopped scan with the same scores', async () => {
    const outDir = path.join(dir, 'resumed');
    const stop = new AbortController();
    stop.abort();

    const first = await scanVideo(video, loaded, options(outDir, { signal: stop.signal }));
    expect(first.interrupted).toBe(true);
    expect((await readdir(outDir)).sort()).toEqual(['.yard.avi.scan-scores.f64', '.yard.avi.scan-state.json']);
    expect(JSON.parse(await readFile(path.join(outDir, '.yard.avi.scan-state.json'), 'utf8')).framesScored).toBe(4);

    const second = await scanVideo(video, loaded, options(outDir));

    expect(second.interrupted).toBe(false);
    expect(await readScores(scanOutputPaths(video, outDir).csv)).toEqual(await readScores(scanOutputPaths(video, path.join(dir, 'plain')).csv));
    expect((await readdir(outDir)).filter((name) => name.startsWith('.'))).toEqual([]);
  });

  it('starts over when the saved state is for another model', async () => {
    const outDir = path.join(dir, 'stale');
    const stop = new AbortController();
    stop.abort();
    await scanVideo(video, loaded, options(outDir, { signal: stop.signal }));
    const state = path.join(outDir, '.yard.avi.scan-state.json');
    await writeFile(state, JSON.stringify({ ...JSON.parse(await readFile(state, 'utf8')), modelCreatedAt: 'another model' }));

    const result = await scanVideo(video, loaded, options(outDir));

    expect(result.report!.frames.decoded).toBe(80);
    expect(await readScores(scanOutputPaths(video, outDir).csv)).toEqual(await readScores(scanOutputPaths(video, path.join(dir, 'plain')).csv));
  });

  it('scans a truncated video as far as it goes and reports the loss', async () => {
    const bytes = await readFile(video);
    const truncated = path.join(dir, 'cut.avi');
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));

    const result = await scanVideo(truncated, loaded, options(path.join(dir, 'cut')));

    const { frames } = result.report!;
    expect(frames.decoded).toBeGreaterThan(0);
    expect(frames.decoded).toBeLessThan(80);
    expect(frames.decodeStatus).toBe('partial');
  });

  it('rejects a file that is not a video', async () => {
    const text = path.join(dir, 'notes.avi');
    await writeFile(text, 'minutes of the meeting');

    await expect(scanVideo(text, loaded, options(path.join(dir, 'text')))).rejects.toThrow(`${text} is not a video`);
  });
});

describe('video pipeline under watch', () => {
  it('scans dropped videos and sends a non-video to failed/', async () => {
    const project = path.join(dir, 'project');
    await makeProject(project);
    await cp(path.join(dir, 'model'), path.join(project, 'models', 'video-anomaly'), { recursive: true });
    await writeFile(path.join(project, 'pipelines', 'video.yaml'), 'name: video\nsteps:\n  - step: video-anomaly\nwatch:\n  stabilityMs: 300\n  pollIntervalMs: 50\n');
    const inbox = path.join(project, 'inbox', 'video');
    await mkdir(inbox, { recursive: true });

    const watch = startCli(['watch', '--root', project, '--threads', '1'], { cwd: project });
    await watch.waitFor(/Watching .*inbox\/video\//);
    await copyFile(video, path.join(inbox, 'yard.avi'));
    await writeFile(path.join(inbox, 'holiday.mp4'), 'not a video, only text');
    await watch.waitFor(/video: yard\.avi ->/);
    await watch.waitFor(/holiday\.mp4/);
    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);

    const outbox = (await readdir(path.join(project, 'outbox', 'video'))).sort();
    expect(outbox).toEqual(['yard.avi.frames.csv', 'yard.avi.report.json', 'yard.avi.scores.png']);
    expect(watch.output()).toContain('video: yard.avi: 80 frames, 0 anomalous segments');
    const failure = JSON.parse(await readFile(path.join(project, 'failed', 'video', 'holiday.mp4.error.json'), 'utf8'));
    expect(failure.error).toContain(`${path.join(inbox, 'holiday.mp4')} is not a video`);
  });
});

describe('darkroom scan', () => {
  it('scans videos and exits 1 naming a file that is not a video', async () => {
    const notes = path.join(dir, 'minutes.avi');
    await writeFile(notes, 'the minutes of the meeting');
    const outDir = path.join(dir, 'cli');

    const result = await runCli(['scan', video, notes, '--out', outDir, '--model', path.join(dir, 'model')]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('yard.avi: 80 frames, 0 anomalous segments');
    expect(result.stderr).toContain(`${notes} is not a video`);
    expect((await readdir(outDir)).sort()).toEqual(['yard.avi.frames.csv', 'yard.avi.report.json', 'yard.avi.scores.png']);
  });

  it('exits 2 without --out', async () => {
    const result = await runCli(['scan', video]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('darkroom scan: missing --out DIR, the folder for the results');
  });

  it('exits 2 for a threshold that is not a number', async () => {
    const result = await runCli(['scan', video, '--out', path.join(dir, 'x'), '--threshold', 'high']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Expected a positive number for --threshold but received "high"');
  });
});
