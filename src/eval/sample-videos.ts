/**
 * Labelled sample videos for the video anomaly scanner: one normal video to train on and a few
 * test videos from the same synthetic camera, each with a CSV of per-frame labels. The videos
 * come from the seeded generator in synthetic-video.ts, so the same options always write the
 * same frames and labels (the encoded bytes can differ between ffmpeg builds).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { invalidOption } from '../errors.js';
import { writeFileAtomic } from '../media/atomic.js';
import { writeVideo } from '../media/video.js';
import { ANOMALY_KINDS, type AnomalyKind, generateSyntheticVideo, type SyntheticVideo } from './synthetic-video.js';

export interface SampleVideoOptions {
  readonly outDir: string;
  /** Seed of the background, shared by every video so that they show one camera. Default 1. */
  readonly scene?: number;
  readonly width?: number;
  readonly height?: number;
  readonly fps?: number;
  /** Frames of the normal training video. Default 1800, 3 minutes at 10 fps. */
  readonly normalFrames?: number;
  /** Frames of each test video. Default 900, 90 s at 10 fps. */
  readonly testFrames?: number;
  /** Number of test videos. Default 3. */
  readonly testVideos?: number;
  /** Events of each test video. Default: all five kinds, in an order that rotates from one video to the next. */
  readonly anomalies?: readonly AnomalyKind[];
}

export interface WrittenSample {
  readonly video: string;
  /** The labels file, absent for the normal video. */
  readonly labels?: string;
  readonly seed: number;
  readonly frames: number;
  readonly anomalousFrames: number;
}

/** Seed of the normal video. Test video i, counting from 1, uses TEST_SEED_BASE + i, so no test video repeats the training one. */
const NORMAL_SEED = 100;
const TEST_SEED_BASE = 200;

/**
 * MPEG-4 quantiser of the sample videos. At 4 the sensor noise survives as grain and the four
 * default videos take 3.9 MB, against 11 MB at the writer's default of 2.
 */
const SAMPLE_QUANTISER = 4;

export const LABELS_HEADER = 'frame,label,event';

/**
 * Formats per-frame labels as CSV with the header `frame,label,event`: the frame index from 0,
 * 1 for an anomalous frame and 0 otherwise, and the kind of the event that the frame belongs
 * to (empty for normal frames).
 */
export function formatLabelsCsv(video: Pick<SyntheticVideo, 'labels' | 'events'>): string {
  const kinds: string[] = new Array<string>(video.labels.length).fill('');
  for (const event of video.events) {
    for (let frame = event.startFrame; frame <= event.endFrame; frame++) kinds[frame] = kinds[frame] === '' ? event.kind : `${kinds[frame]};${event.kind}`;
  }
  const lines = [LABELS_HEADER];
  for (let frame = 0; frame < video.labels.length; frame++) lines.push(`${frame},${video.labels[frame]},${kinds[frame]}`);
  return lines.join('\n') + '\n';
}

/** Encodes a generated video with writeVideo (MPEG-4 Part 2 for .avi) and, with `withLabels`, writes `<stem>.labels.csv` beside it. */
export async function writeLabelledVideo(file: string, video: SyntheticVideo, withLabels: boolean): Promise<string | undefined> {
  const writer = await writeVideo(file, { width: video.width, height: video.height, fps: video.fps, channels: 1, mpeg4Quantiser: SAMPLE_QUANTISER });
  try {
    for (const frame of video.frames) await writer.write(frame);
  } catch (error) {
    await writer.abort();
    throw error;
  }
  await writer.close();
  if (!withLabels) return undefined;

  const labels = path.join(path.dirname(file), `${path.basename(file, path.extname(file))}.labels.csv`);
  await writeFileAtomic(labels, formatLabelsCsv(video));
  return labels;
}

/**
 * Writes `normal.avi` and `test-01.avi`, `test-02.avi`, ... with their `.labels.csv` files to
 * `outDir`. Every video shows the same scene, and each has its own seed, so the people and
 * events differ.
 */
export async function writeSampleVideos(options: SampleVideoOptions): Promise<WrittenSample[]> {
  const { outDir, scene = 1, width = 160, height = 120, fps = 10, normalFrames = 1800, testFrames = 900, testVideos = 3, anomalies = ANOMALY_KINDS } = options;
  if (!Number.isInteger(testVideos) || testVideos < 1 || testVideos > 99) throw invalidOption('an integer from 1 to 99', 'testVideos', testVideos);
  await mkdir(outDir, { recursive: true });

  const written: WrittenSample[] = [];
  const normal = generateSyntheticVideo({ seed: NORMAL_SEED, frames: normalFrames, scene, width, height, fps });
  const normalFile = path.join(outDir, 'normal.avi');
  await writeLabelledVideo(normalFile, normal, false);
  written.push({ video: normalFile, seed: NORMAL_SEED, frames: normalFrames, anomalousFrames: 0 });

  for (let index = 1; index <= testVideos; index++) {
    const seed = TEST_SEED_BASE + index;
    // Rotating the order puts each kind of event at a different time in each video.
    const shift = (index - 1) % Math.max(1, anomalies.length);
    const order = [...anomalies.slice(shift), ...anomalies.slice(0, shift)];
    const test = generateSyntheticVideo({ seed, frames: testFrames, scene, width, height, fps, anomalies: order });
    const file = path.join(outDir, `test-${String(index).padStart(2, '0')}.avi`);
    const labels = await writeLabelledVideo(file, test, true);
    written.push({ video: file, labels, seed, frames: testFrames, anomalousFrames: test.labels.reduce((sum, label) => sum + label, 0) });
  }
  return written;
}
