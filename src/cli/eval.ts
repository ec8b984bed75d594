import path from 'node:path';

import { DarkroomError, invalidOption } from '../errors.js';
import { evaluateDenoiser, formatDenoiseTable } from '../eval/denoise.js';
import { createLogger } from '../log.js';
import { loadModel } from '../models/storage.js';
import { DEFAULT_TILE_OPTIONS } from '../pipeline/steps.js';
import { readInteger, readNumber } from '../train/options.js';
import { parseCommandArgs, toCamelCase } from './args.js';
import { startBackend } from './backend.js';
import { PACKAGE_ROOT } from './project.js';

export const EVAL_HELP = `Usage: darkroom eval denoise --data DIR [--sigma 25] [--model DIR] [--json]

Adds Gaussian noise of standard deviation --sigma (0-255 scale, fixed seed) to each photo in
--data and prints the PSNR of the noisy photo, of the best Gaussian blur and median filter
(each with its best setting chosen against the clean photo), and of the model, per photo and
as means. The split column says whether the model trained on the photo.

Options:
  --data DIR       folder of clean photos
  --sigma X        noise standard deviation on the 0-255 scale (default 25)
  --model DIR      model folder (default: the shipped models/denoise)
  --seed N         noise seed (default 1)
  --max-side N     photos are scaled down to this long side first (default 1024)
  --json           print the rows as JSON instead of a table`;

const EVAL_OPTIONS = {
  data: { type: 'string' },
  sigma: { type: 'string' },
  model: { type: 'string' },
  seed: { type: 'string' },
  'max-side': { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function evalCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('eval', args, EVAL_OPTIONS);
  if (values.help) {
    process.stdout.write(EVAL_HELP + '\n');
    return 0;
  }

  const task = positionals[0];
  if (task !== 'denoise') throw invalidOption('one of denoise', 'the eval task', task, 'USAGE');
  const raw = toCamelCase(values);
  if (typeof raw.data !== 'string') throw new DarkroomError('USAGE', 'darkroom eval: missing --data DIR, a folder of clean photos');
  const sigma = readNumber(raw, 'sigma', 25, 1, 100);
  const seed = readInteger(raw, 'seed', 1, 0, 2 ** 31 - 1);
  const maxSide = readInteger(raw, 'maxSide', 1024, 16, 100_000);
  const modelDir = typeof raw.model === 'string' ? path.resolve(raw.model) : path.join(PACKAGE_ROOT, 'models', 'denoise');

  const log = createLogger('eval');
  await startBackend(values.backend, log);
  const loaded = await loadModel(modelDir);
  log.info(`Model ${modelDir}: ${loaded.metadata.task} v${loaded.metadata.version}`);
  const rows = await evaluateDenoiser(loaded, { data: raw.data, sigma, seed, maxSide, tiles: DEFAULT_TILE_OPTIONS }, log);

  process.stdout.write((values.json ? JSON.stringify(rows, null, 2) : formatDenoiseTable(rows, sigma)) + '\n');
  return 0;
}
