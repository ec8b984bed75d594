import { mkdir, readFile, rm, stat, writeFile, appendFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

import { DarkroomError } from '../errors.js';
import { type AnomalySegment, segmentsFromFlags } from '../eval/video-scoring.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../media/atomic.js';
import { countEmptyVideoPackets, type DecodeSummary, probeVideo, readFrames, type VideoInfo } from '../media/video.js';
import type { LoadedModel } from '../models/storage.js';
import { ProgressBar } from '../progress.js';
import { formatFramesCsv, type ScanReport } from './report.js';
import { renderScorePlot } from './plot.js';
import { ClipScorer, type ClipScores, clipErrorMap, errorMapReference, resumeHistoryLength, type VideoScorer, videoScorerFor } from './score.js';
import { renderErrorThumbnail } from './thumbnail.js';

export interface ScanOptions {
  readonly outDir: string;
  /** Overrides the threshold that training calibrated. */
  readonly threshold?: number;
  /** Anomalous runs shorter than this many frames are not reported. */
  readonly minSegmentFrames: number;
  /** Anomalous runs at most this many frames apart are reported as one segment. */
  readonly mergeGapFrames: number;
  /** Width in pixels of the thumbnails of segment peaks. */
  readonly thumbnailWidth: number;
  /** Seconds between saves of the scan state, from which an interrupted scan resumes. */
  readonly saveEverySeconds: number;
  readonly log: Logger;
  readonly progress: boolean;
  readonly signal?: AbortSignal;
}

export { DEFAULT_SCAN_OPTIONS } from './defaults.js';

export interface ScanResult {
  readonly interrupted: boolean;
  /** Written files, report last; empty when interrupted. */
  readonly outputs: readonly string[];
  readonly report?: ScanReport;
}

/** State that an interrupted scan leaves in the output folder, to resume from. */
interface ScanState {
  readonly video: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly model: string;
  readonly modelCreatedAt: string;
  readonly framesScored: number;
  readonly seconds: number;
}

/**
 * Output file names for a video: `<name>.frames.csv`, `<name>.report.json` and so on, where
 * `<name>` keeps the extension, so that clip.avi and clip.mp4 in one folder do not collide.
 */
export function scanOutputPaths(video: string, outDir: string): { csv: string; report: string; plot: string; thumbnail: (index: number) => string; state: string; partialScores: string } {
  const stem = path.basename(video);
  const join = (suffix: string): string => path.join(outDir, `${stem}${suffix}`);
  return {
    csv: join('.frames.csv'),
    report: join('.report.json'),
    plot: join('.scores.png'),
    thumbnail: (index) => join(`.anomaly-${String(index + 1).padStart(2, '0')}.jpg`),
    state: path.join(outDir, `.${stem}.scan-state.json`),
    partialScores: path.join(outDir, `.${stem}.scan-scores.f64`),
  };
}

/**
 * Scans a video: every decoded frame gets a score (see score.ts) from the clip it falls in, and
 * frames over the threshold form anomalous segments. Writes the per-frame CSV, the
 * score plot, a thumbnail per segment and the report, the report last, each atomically.
 * A stopped scan saves its scores every `saveEverySeconds` and resumes where it stopped.
 */
export async function scanVideo(video: string, loaded: LoadedModel, options: ScanOptions): Promise<ScanResult> {
  const { log } = options;
  const scorer = await videoScorerFor(loaded);
  const { clipLength, frameWidth, frameHeight } = scorer.architecture;
  const threshold = options.threshold ?? loaded.metadata.inference?.threshold;
  if (threshold === undefined || !Number.isFinite(threshold)) {
    throw new DarkroomError('INVALID_INPUT', `The model in ${loaded.dir} has no calibrated threshold; give one with --threshold`);
  }

  const info = await probeVideo(video);
  const paths = scanOutputPaths(video, options.outDir);
  await mkdir(options.outDir, { recursive: true });
  const fileStats = await stat(video);
  const started = performance.now();

  const resumed = await readState(paths, video, fileStats, loaded, clipLength);
  const scores: number[] = resumed?.scores ?? [];
  if (resumed === undefined) await removeState(paths);
  else {
    // The scores file is rewritten with exactly the saved scores, because a crash between an
    // append and the state write can leave extra scores that would shift every later one.
    await writeFile(paths.partialScores, new Uint8Array(Float64Array.from(scores).buffer));
    log.info(`${path.basename(video)}: resuming after frame ${scores.length}`);
  }

  const progress = options.progress ? new ProgressBar({ label: path.basename(video), total: info.frameCount ?? 0, unit: 'frame' }) : undefined;
  progress?.resumeFrom(scores.length);
  // A resumed scan reads the frames before its first new one again, as the next clip's history.
  const historyFrames = Math.min(scores.length, resumeHistoryLength(scorer.architecture));
  const reader = readFrames(video, { channels: 1, width: frameWidth, height: frameHeight, startFrame: scores.length - historyFrames });
  const history: Uint8Array[] = [];
  let stream: ClipScorer | undefined;
  let savedCount = scores.length;
  let lastSave = performance.now();
  let interrupted = false;

  const save = async (): Promise<void> => {
    const fresh = Float64Array.from(scores.slice(savedCount));
    await appendFile(paths.partialScores, new Uint8Array(fresh.buffer));
    savedCount = scores.length;
    const state: ScanState = {
      video: path.resolve(video),
      size: fileStats.size,
      mtimeMs: fileStats.mtimeMs,
      model: loaded.dir,
      modelCreatedAt: loaded.metadata.createdAt,
      framesScored: savedCount,
      seconds: (resumed?.seconds ?? 0) + (performance.now() - started) / 1000,
    };
    await writeFileAtomic(paths.state, JSON.stringify(state));
    lastSave = performance.now();
  };

  for await (const frame of reader) {
    if (history.length < historyFrames) {
      history.push(frame.data);
      continue;
    }
    stream ??= new ClipScorer(scorer, history);
    const clip = stream.push(frame.data);
    if (clip === undefined) continue;

    scores.push(...clip.scores);
    progress?.update(scores.length);

    // Saves happen only at clip boundaries, so a resumed scan cuts the video into the same clips.
    if (options.signal?.aborted === true) {
      interrupted = true;
      break;
    }
    if (performance.now() - lastSave > options.saveEverySeconds * 1000) await save();
  }
  const tail = interrupted ? undefined : stream?.finish();
  if (tail !== undefined) scores.push(...tail.scores);
  progress?.update(scores.length);
  progress?.finish();
  const summary = await reader.summary();

  if (interrupted) {
    await save();
    log.info(`${path.basename(video)}: stopped after frame ${scores.length}; run the same scan again to resume`);
    return { interrupted: true, outputs: [] };
  }

  const seconds = (resumed?.seconds ?? 0) + (performance.now() - started) / 1000;
  const report = await writeScanOutputs(video, info, summary, scores, threshold, loaded, scorer, paths, options, seconds);
  await removeState(paths);
  return { interrupted: false, outputs: [paths.csv, paths.plot, ...report.segments.map((_, index) => paths.thumbnail(index)), paths.report], report };
}

async function writeScanOutputs(
  video: string,
  info: VideoInfo,
  summary: DecodeSummary,
  scores: readonly number[],
  threshold: number,
  loaded: LoadedModel,
  scorer: VideoScorer,
  paths: ReturnType<typeof scanOutputPaths>,
  options: ScanOptions,
  seconds: number,
): Promise<ScanReport> {
  const flags = scores.map((score) => score > threshold);
  const segments = segmentsFromFlags(flags, scores, info.fps, { minLength: options.minSegmentFrames, mergeGap: options.mergeGapFrames });
  const name = path.basename(video);

  await writeFileAtomic(paths.csv, formatFramesCsv(scores, info.fps, threshold));
  await writeFileAtomic(paths.plot, await renderScorePlot({ title: `${name}: anomaly score per frame`, scores, fps: info.fps, threshold, segments }));
  await removeStaleThumbnails(paths, segments.length);
  await writeThumbnails(video, info, segments, threshold, scorer, paths, options);

  const expected = info.frameCount;
  const empty = expected !== undefined && scores.length < expected ? await countEmptyVideoPackets(video) : 0;
  const report: ScanReport = {
    video: path.resolve(video),
    width: info.width,
    height: info.height,
    fps: info.fps,
    durationSeconds: scores.length / info.fps,
    model: { dir: loaded.dir, version: loaded.metadata.version, createdAt: loaded.metadata.createdAt, trainedOn: loaded.metadata.training.files.train },
    threshold: {
      value: threshold,
      method:
        options.threshold !== undefined
          ? 'given with --threshold'
          : `${loaded.metadata.inference?.percentile ?? '?'}th percentile of the per-frame scores of the frames the model trained on`,
    },
    frames: {
      decoded: scores.length,
      expected: expected ?? null,
      empty,
      lost: expected === undefined ? null : Math.max(0, expected - empty - scores.length),
      decodeStatus: summary.status,
      decodeErrors: summary.decodeErrors,
      decodeMessages: summary.errorMessages,
      anomalous: flags.filter(Boolean).length,
    },
    segments: segments.map((segment, index) => ({ ...segment, thumbnail: path.basename(paths.thumbnail(index)) })),
    scanSeconds: seconds,
    framesPerSecond: scores.length / Math.max(seconds, 1e-9),
  };
  await writeFileAtomic(paths.report, JSON.stringify(report, null, 2) + '\n');
  return report;
}

/**
 * Draws each segment's peak frame with its prediction error map. One more pass over the video
 * decodes it twice in step, at the model's size to rescore the clips up to the last peak, and in
 * colour at the thumbnail's size, so that the scan itself keeps no frames.
 */
async function writeThumbnails(
  video: string,
  info: VideoInfo,
  segments: readonly AnomalySegment[],
  threshold: number,
  scorer: VideoScorer,
  paths: ReturnType<typeof scanOutputPaths>,
  options: ScanOptions,
): Promise<void> {
  if (segments.length === 0) return;

  const { clipLength, frameWidth, frameHeight } = scorer.architecture;
  const frameSize = frameWidth * frameHeight;
  const width = Math.min(info.width, options.thumbnailWidth) & ~1;
  const height = Math.max(2, Math.round((width * info.height) / info.width) & ~1);
  const peaks = new Map(segments.map((segment, index) => [segment.peakFrame, index]));
  const lastPeak = Math.max(...peaks.keys());

  const small = readFrames(video, { channels: 1, width: frameWidth, height: frameHeight, maxFrames: lastPeak + clipLength })[Symbol.asyncIterator]();
  const large = readFrames(video, { channels: 3, width, height, maxFrames: lastPeak + 1 })[Symbol.asyncIterator]();
  const stream = new ClipScorer(scorer);
  const pictures = new Map<number, Uint8Array>();
  const reference = errorMapReference(scorer, threshold);

  const drawPeaks = async (scored: ClipScores, clipStart: number): Promise<void> => {
    for (const [peak, segmentIndex] of peaks) {
      const picture = pictures.get(peak);
      if (peak < clipStart || peak >= clipStart + scored.scores.length || picture === undefined) continue;
      const caption = `frame ${peak}, ${formatSeconds(peak / info.fps)}, score ${segments[segmentIndex].peakScore.toPrecision(3)}`;
      const png = await renderErrorThumbnail(
        { width, height, channels: 3, data: picture },
        { width: frameWidth, height: frameHeight, values: clipErrorMap(scored, peak - clipStart, frameSize) },
        reference,
        caption,
      );
      await writeFileAtomic(paths.thumbnail(segmentIndex), await toJpeg(png));
    }
  };

  let index = 0;
  for (; ; index++) {
    const next = await small.next();
    if (next.done === true) break;
    const scored = stream.push(next.value.data);
    if (index <= lastPeak) {
      const picture = await large.next();
      if (picture.done !== true && peaks.has(index)) pictures.set(index, picture.value.data);
    }
    if (scored === undefined) continue;

    await drawPeaks(scored, index + 1 - clipLength);
    if (index >= lastPeak) break;
  }
  // A peak in the video's last, incomplete clip.
  const tail = index > lastPeak ? undefined : stream.finish();
  if (tail !== undefined) await drawPeaks(tail, index - tail.scores.length);
  await small.return?.();
  await large.return?.();
}

/** Removes thumbnails of an earlier scan of the same video beyond this scan's segments. */
async function removeStaleThumbnails(paths: ReturnType<typeof scanOutputPaths>, keep: number): Promise<void> {
  for (let index = keep; ; index++) {
    const file = paths.thumbnail(index);
    const existed = await stat(file).then(() => true, () => false);
    if (!existed) return;
    await rm(file, { force: true });
  }
}

async function toJpeg(png: Buffer): Promise<Buffer> {
  return sharp(png).jpeg({ quality: 88 }).toBuffer();
}

function formatSeconds(seconds: number): string {
  return `${seconds.toFixed(1)} s`;
}

/** Reads the saved state of an interrupted scan of the same video with the same model. */
async function readState(
  paths: ReturnType<typeof scanOutputPaths>,
  video: string,
  fileStats: { size: number; mtimeMs: number },
  loaded: LoadedModel,
  clipLength: number,
): Promise<{ scores: number[]; seconds: number } | undefined> {
  let state: ScanState;
  let bytes: Buffer;
  try {
    state = JSON.parse(await readFile(paths.state, 'utf8')) as ScanState;
    bytes = await readFile(paths.partialScores);
  } catch {
    return undefined;
  }

  const same =
    state.video === path.resolve(video) &&
    state.size === fileStats.size &&
    state.mtimeMs === fileStats.mtimeMs &&
    state.model === loaded.dir &&
    state.modelCreatedAt === loaded.metadata.createdAt &&
    state.framesScored % clipLength === 0;
  // Scores appended after the last state write belong to no saved state and are dropped.
  if (!same || bytes.length < state.framesScored * 8) return undefined;
  const scores = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + state.framesScored * 8));
  return { scores: Array.from(scores), seconds: state.seconds };
}

async function removeState(paths: ReturnType<typeof scanOutputPaths>): Promise<void> {
  await rm(paths.state, { force: true });
  await rm(paths.partialScores, { force: true });
}
