import path from 'node:path';

import { DarkroomError } from '../errors.js';
import { writeSampleVideos } from '../eval/sample-videos.js';
import { createLogger } from '../log.js';
import { readInteger } from '../train/options.js';
import { parseCommandArgs, toCamelCase } from './args.js';

export const SAMPLES_HELP = `Usage: darkroom samples video [--out DIR] [options]

Writes labelled sample videos from one synthetic fixed camera over a walkway (160x120 grey,
10 fps, MPEG-4 in .avi): normal.avi, with people walking left to right, to train on, and
test-01.avi, test-02.avi, ... with <name>.labels.csv (frame,label,event) beside each. Every test
video has five events: a person walking against the flow, a fast cyclist or car, a flash, a
frozen picture and a corrupted stream. The same options always give the same frames.

  darkroom samples video --out samples/video
  darkroom train video-anomaly --data samples/video/normal.avi --out models/my-video-model
  darkroom eval video-anomaly --data samples/video --model models/my-video-model

Options:
  --out DIR            output folder (default samples/video, created if missing)
  --normal-frames N    frames of normal.avi (default 1800, 3 minutes)
  --test-frames N      frames of each test video (default 900; at least 700 for five events)
  --test-videos N      number of test videos (default 3)`;

const SAMPLES_OPTIONS = {
  out: { type: 'string' },
  'normal-frames': { type: 'string' },
  'test-frames': { type: 'string' },
  'test-videos': { type: 'string' },
} as const;

export async function samplesCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('samples', args, SAMPLES_OPTIONS);
  if (values.help) {
    process.stdout.write(SAMPLES_HELP + '\n');
    return 0;
  }
  if (positionals[0] !== 'video' || positionals.length > 1) {
    throw new DarkroomError('USAGE', `darkroom samples: expected "video" but received ${JSON.stringify(positionals.join(' '))}; see "darkroom samples --help"`);
  }

  const raw = toCamelCase(values);
  const outDir = path.resolve(typeof values.out === 'string' && values.out !== '' ? values.out : path.join('samples', 'video'));
  const log = createLogger('samples');
  const written = await writeSampleVideos({
    outDir,
    normalFrames: readInteger(raw, 'normalFrames', 1800, 16, 1_000_000),
    testFrames: readInteger(raw, 'testFrames', 900, 16, 1_000_000),
    testVideos: readInteger(raw, 'testVideos', 3, 1, 99),
  });
  for (const sample of written) {
    const labels = sample.labels === undefined ? 'normal' : `${sample.anomalousFrames} anomalous frames, labels in ${path.basename(sample.labels)}`;
    log.info(`${path.relative(process.cwd(), sample.video)}: ${sample.frames} frames, seed ${sample.seed}, ${labels}`);
  }
  return 0;
}
