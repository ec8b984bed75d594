import { stat } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError, invalidOption } from '../errors.js';
import { createLogger } from '../log.js';
import { loadModel } from '../models/storage.js';
import { DEFAULT_SCAN_OPTIONS, scanVideo } from '../scan/scan.js';
import { countOf } from '../text.js';
import { listVideos } from '../train/video-anomaly.js';
import { readInteger } from '../train/options.js';
import { interruptSignal, parseCommandArgs, toCamelCase } from './args.js';
import { startBackend } from './backend.js';
import { describeFailure, PACKAGE_ROOT } from './project.js';

export const SCAN_HELP = `Usage: darkroom scan <videos or folders...> --out DIR [options]

Scans videos for anomalous frames with the video-anomaly model. Folders are not searched
recursively. For each video it writes, to --out, where <name> is the video's file name:
<name>.frames.csv (frame,time_s,score,anomalous), <name>.report.json (threshold,
anomalous segments, frames lost to decoding errors), <name>.scores.png (the score over time)
and <name>.anomaly-NN.jpg (each segment's peak frame with its prediction error in red).
Ctrl-C stops after the current clip; the same command resumes where it stopped.
Exit status: 0 when every video was scanned, 1 when some failed, 2 for a usage error.

Options:
  --out DIR            output folder (created if missing)
  --model DIR          model folder (default: ./models/video-anomaly, else the shipped one)
  --threshold X        score above which a frame is anomalous (default: the model's calibrated one)
  --min-segment N      shortest anomalous run reported, in frames (default ${DEFAULT_SCAN_OPTIONS.minSegmentFrames})
  --merge-gap N        anomalous runs at most N frames apart are one segment (default ${DEFAULT_SCAN_OPTIONS.mergeGapFrames})
  --thumbnail-width N  width of the thumbnails in pixels (default ${DEFAULT_SCAN_OPTIONS.thumbnailWidth})`;

const SCAN_OPTIONS = {
  out: { type: 'string' },
  model: { type: 'string' },
  threshold: { type: 'string' },
  'min-segment': { type: 'string' },
  'merge-gap': { type: 'string' },
  'thumbnail-width': { type: 'string' },
} as const;

/** Returns the model folder: the flag, else ./models/video-anomaly when it contains a model, else the shipped one. */
export async function defaultVideoModel(flag: unknown): Promise<string> {
  if (typeof flag === 'string' && flag !== '') return path.resolve(flag);
  const local = path.resolve('models', 'video-anomaly');
  const exists = await stat(path.join(local, 'darkroom.json')).then(() => true, () => false);
  return exists ? local : path.join(PACKAGE_ROOT, 'models', 'video-anomaly');
}

export async function scanCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('scan', args, SCAN_OPTIONS);
  if (values.help) {
    process.stdout.write(SCAN_HELP + '\n');
    return 0;
  }

  const raw = toCamelCase(values);
  if (typeof values.out !== 'string' || values.out === '') throw new DarkroomError('USAGE', 'darkroom scan: missing --out DIR, the folder for the results');
  if (positionals.length === 0) throw new DarkroomError('USAGE', 'darkroom scan: missing the videos or folders to scan');
  const threshold = raw.threshold === undefined ? undefined : Number(raw.threshold);
  const minSegmentFrames = readInteger(raw, 'minSegment', DEFAULT_SCAN_OPTIONS.minSegmentFrames, 1, 1_000_000);
  const mergeGapFrames = readInteger(raw, 'mergeGap', DEFAULT_SCAN_OPTIONS.mergeGapFrames, 0, 1_000_000);
  const thumbnailWidth = readInteger(raw, 'thumbnailWidth', DEFAULT_SCAN_OPTIONS.thumbnailWidth, 16, 4096);
  if (threshold !== undefined && !(threshold > 0 && Number.isFinite(threshold))) throw invalidOption('a positive number', '--threshold', raw.threshold);

  const log = createLogger('scan');
  const videos = await listVideos(positionals);
  await startBackend(values.backend, log);
  const loaded = await loadModel(await defaultVideoModel(values.model));
  if (loaded.metadata.task !== 'video-anomaly') {
    throw new DarkroomError('USAGE', `darkroom scan: the model in ${loaded.dir} was trained for "${loaded.metadata.task}", not for video anomaly scans`);
  }
  const signal = interruptSignal(() => log.info('Stopping after the current clip; run the same command again to resume'));
  const outDir = path.resolve(values.out);
  let failed = 0;

  for (const video of videos) {
    if (signal.aborted) break;
    try {
      const result = await scanVideo(video, loaded, {
        outDir,
        threshold,
        minSegmentFrames,
        mergeGapFrames,
        thumbnailWidth,
        saveEverySeconds: DEFAULT_SCAN_OPTIONS.saveEverySeconds,
        log,
        progress: true,
        signal,
      });
      if (result.report !== undefined) {
        const { report } = result;
        const lost = report.frames.lost === null || report.frames.lost === 0 ? '' : `, ${report.frames.lost} of the ${report.frames.expected} frames that the container lists could not be decoded`;
        log.info(
          `${path.basename(video)}: ${countOf(report.frames.decoded, 'frame')}, ${report.segments.length} anomalous segment${report.segments.length === 1 ? '' : 's'}${lost}; ` +
            `${report.framesPerSecond.toFixed(0)} frames/s -> ${path.relative(process.cwd(), result.outputs.at(-1)!)}`,
        );
      }
    } catch (error) {
      failed++;
      log.error(`failed: ${describeFailure(video, (error as Error).message)}`);
    }
  }

  if (signal.aborted) return 130;
  return failed > 0 ? 1 : 0;
}
