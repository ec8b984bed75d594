import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { formatLabelsCsv, writeSampleVideos, type WrittenSample } from '../src/eval/sample-videos.js';
import { parseLabelsCsv } from '../src/eval/video-anomaly.js';
import { probeVideo } from '../src/media/video.js';
import { runCli } from './helpers/cli.js';

let dir: string;
let written: WrittenSample[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-samples-'));
  written = await writeSampleVideos({ outDir: dir, width: 64, height: 48, normalFrames: 20, testFrames: 80, testVideos: 2, anomalies: ['flash'] });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('formatLabelsCsv', () => {
  it('writes one row per frame with the event kind', () => {
    const csv = formatLabelsCsv({ labels: Uint8Array.from([0, 1, 1, 0]), events: [{ kind: 'flash', startFrame: 1, endFrame: 2 }] });
    expect(csv).toBe('frame,label,event\n0,0,\n1,1,flash\n2,1,flash\n3,0,\n');
  });
});

describe('writeSampleVideos', () => {
  it('writes a normal video and labelled test videos', async () => {
    expect((await readdir(dir)).sort()).toEqual(['normal.avi', 'test-01.avi', 'test-01.labels.csv', 'test-02.avi', 'test-02.labels.csv']);
    expect(written.map((sample) => [path.basename(sample.video), sample.seed, sample.frames])).toEqual([
      ['normal.avi', 100, 20],
      ['test-01.avi', 201, 80],
      ['test-02.avi', 202, 80],
    ]);
  });

  it('labels every frame of a test video', async () => {
    const { labels, kinds } = parseLabelsCsv(await readFile(path.join(dir, 'test-01.labels.csv'), 'utf8'), 'test-01.labels.csv');
    const info = await probeVideo(path.join(dir, 'test-01.avi'));

    expect(labels).toHaveLength(80);
    expect(info.frameCount).toBe(80);
    expect(labels.reduce((sum, label) => sum + label, 0)).toBe(written[1]!.anomalousFrames);
    expect(new Set(kinds)).toEqual(new Set(['', 'flash']));
  });

  it('writes the same labels every time', async () => {
    const again = path.join(dir, 'again');
    await writeSampleVideos({ outDir: again, width: 64, height: 48, normalFrames: 20, testFrames: 80, testVideos: 1, anomalies: ['flash'] });

    expect(await readFile(path.join(again, 'test-01.labels.csv'), 'utf8')).toBe(await readFile(path.join(dir, 'test-01.labels.csv'), 'utf8'));
  });
});

describe('darkroom samples', () => {
  it('rejects a kind other than video', async () => {
    const result = await runCli(['samples', 'photos']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('darkroom samples: expected "video" but received "photos"; see "darkroom samples --help"');
  });
});
