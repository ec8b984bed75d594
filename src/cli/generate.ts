import path from 'node:path';

import { DarkroomError, invalidOption } from '../errors.js';
import { assertEmptyOrMissing } from '../dataset/write.js';
import { generateDatasetAtomically } from '../generate/generate.js';
import { createLogger } from '../log.js';
import { GENERATOR_KINDS, type GeneratorKind, loadGenerator } from '../models/generator-storage.js';
import { readInteger, readPath } from '../train/options.js';
import { interruptSignal, parseCommandArgs, toCamelCase } from './args.js';
import { startBackend } from './backend.js';
import { PACKAGE_ROOT } from './project.js';

export const GENERATE_HELP = `Usage: darkroom generate vae|gan --count N --out DIR [--model DIR] [--class C] [--seed S]

Writes a synthetic image dataset from a generator trained by "darkroom train vae|gan": PNG files
in one sub-folder per class, and manifest.csv (file,class,model,seed). Image i is drawn from
seed S + i, so any image can be made again alone:
  darkroom generate gan --count 1 --seed <seed> --class <class> --out DIR
Without --class, the classes take turns, so the dataset is balanced.

Options:
  --model DIR        the generator (default: the shipped models/vae or models/gan, trained on
                     Fashion-MNIST)
  --count N          number of images (1 to 10,000,000)
  --out DIR          output folder, new or empty
  --class C          only this class (a name from the model's classes)
  --seed S           seed of the first image (default 1)
  --batch-size N     images made at once (default 256)`;

const GENERATE_OPTIONS = {
  model: { type: 'string' },
  count: { type: 'string' },
  out: { type: 'string' },
  class: { type: 'string' },
  seed: { type: 'string' },
  'batch-size': { type: 'string' },
} as const;

export async function generateCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('generate', args, GENERATE_OPTIONS);
  if (values.help) {
    process.stdout.write(GENERATE_HELP + '\n');
    return 0;
  }
  const kind = positionals[0];
  if (!(GENERATOR_KINDS as readonly (string | undefined)[]).includes(kind)) throw invalidOption(`one of ${GENERATOR_KINDS.join(', ')}`, 'the generator', kind, 'USAGE');
  if (positionals.length > 1) throw new DarkroomError('USAGE', `darkroom generate: unexpected argument ${JSON.stringify(positionals[1])}`);
  const raw = toCamelCase(values);
  if (raw.count === undefined) throw new DarkroomError('USAGE', 'darkroom generate: missing --count N, the number of images to write');
  const count = readInteger(raw, 'count', 1, 1, 10_000_000);
  const seed = readInteger(raw, 'seed', 1, 0, 2 ** 31 - 1 - count);
  const batchSize = readInteger(raw, 'batchSize', 256, 1, 4096);
  const out = readPath(raw, 'out');
  const modelDir = typeof raw.model === 'string' ? raw.model : path.join(PACKAGE_ROOT, 'models', kind as GeneratorKind);

  const log = createLogger('generate');
  await startBackend(values.backend, log);
  const loaded = await loadGenerator(modelDir, kind as GeneratorKind);
  const { classes, imageSize, channels } = loaded.metadata.generator;
  log.info(`Model ${loaded.dir}: ${kind} v${loaded.metadata.version}, ${imageSize}x${imageSize} ${channels === 1 ? 'grey' : 'colour'}, ${classes.length > 0 ? `classes ${classes.join(', ')}` : 'no classes'}`);
  // Checked before the hidden folder is filled, because the rename at the end replaces `out`.
  await assertEmptyOrMissing(out);
  const signal = interruptSignal(() => log.info('Ctrl-C: stopping after the current batch and removing the partial dataset'));
  await generateDatasetAtomically(loaded, { count, out, className: typeof raw.class === 'string' ? raw.class : undefined, seed, batchSize, signal }, log);
  return 0;
}
