import { DarkroomError, invalidOption } from '../errors.js';
import { createLogger } from '../log.js';
import { resolveDenoiseTrainOptions, trainDenoise } from '../train/denoise.js';
import { interruptSignal, parseCommandArgs, toCamelCase } from './args.js';
import { startBackend } from './backend.js';

export const TRAIN_HELP = `Usage: darkroom train <task> --data DIR --out DIR [options]

Trains a model on your own photos. Tasks: denoise.

Options:
  --data DIR               folder of training photos (JPEG, PNG, WebP, TIFF, AVIF)
  --out DIR                folder to write the model to; checkpoints go to DIR/checkpoint
  --epochs N               number of epochs (default 30)
  --steps-per-epoch N      optimizer steps per epoch (default 50)
  --batch-size N           patches per step (default 16)
  --patch-size N           patch side in pixels, a multiple of 4 (default 64)
  --learning-rate X        initial Adam learning rate, decayed by a cosine schedule (default 0.001)
  --min-sigma X            lowest noise standard deviation, 0-255 scale (default 0)
  --max-sigma X            highest noise standard deviation, 0-255 scale (default 50)
  --validation-fraction X  share of photos held out for validation PSNR (default 0.15)
  --max-side N             photos are scaled down to this long side before training (default 1536)
  --seed N                 random seed for patches and noise (default 1)
  --resume                 continue from the checkpoint in --out
  --overwrite              start over when --out already holds a model or checkpoint
  --backend NAME           auto, tensorflow-gpu, tensorflow, wasm or cpu (default auto)

Ctrl-C stops after the current step and saves a checkpoint; run again with --resume.`;

const TRAIN_OPTIONS = {
  data: { type: 'string' },
  out: { type: 'string' },
  epochs: { type: 'string' },
  'steps-per-epoch': { type: 'string' },
  'batch-size': { type: 'string' },
  'patch-size': { type: 'string' },
  'learning-rate': { type: 'string' },
  'min-sigma': { type: 'string' },
  'max-sigma': { type: 'string' },
  'validation-fraction': { type: 'string' },
  'max-side': { type: 'string' },
  seed: { type: 'string' },
  resume: { type: 'boolean' },
  overwrite: { type: 'boolean' },
} as const;

const TASKS = ['denoise'] as const;

export async function trainCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('train', args, TRAIN_OPTIONS);
  if (values.help) {
    process.stdout.write(TRAIN_HELP + '\n');
    return 0;
  }

  const task = positionals[0];
  if (task === undefined) throw new DarkroomError('USAGE', `darkroom train: missing the task; expected one of ${TASKS.join(', ')}`);
  if (!(TASKS as readonly string[]).includes(task)) throw invalidOption(`one of ${TASKS.join(', ')}`, 'the train task', task, 'USAGE');
  if (positionals.length > 1) throw new DarkroomError('USAGE', `darkroom train: unexpected argument ${JSON.stringify(positionals[1])}`);

  const options = resolveDenoiseTrainOptions(toCamelCase(values));
  const log = createLogger('train');
  const backend = await startBackend(values.backend, log);
  if (backend.name === 'cpu') log.warn('The plain CPU backend is far too slow to train; expect hours per epoch');

  const signal = interruptSignal(() => log.info('Ctrl-C: finishing the current step, then saving a checkpoint (press again to quit at once)'));
  const result = await trainDenoise(options, { log, backend: backend.name, signal });
  return result.interrupted ? 130 : 0;
}
