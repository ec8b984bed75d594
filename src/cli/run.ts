import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { resolveBackendRequest } from '../backend/select.js';
import { DarkroomError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { removeStaleTemporaries } from '../media/atomic.js';
import { createInferencePool } from '../pool/pool.js';
import { photoTaskFor } from '../pool/tasks.js';
import { ProgressBar } from '../progress.js';
import { countOf } from '../text.js';
import { PHOTO_EXTENSIONS } from '../train/photos.js';
import { interruptSignal, parseCommandArgs } from './args.js';
import { checkOutputFolders, checkPipelineModels, describeFailure, findPipeline, loadProjectPipelines, readThreads, resolveRoot } from './project.js';

export const RUN_HELP = `Usage: darkroom run <pipeline> <files or folders...> --out DIR [--threads N]

Runs a pipeline once on photos, without watching. Folders are searched recursively for
photos (.jpg, .jpeg, .png, .webp, .tif, .tiff, .avif) and their layout is kept under --out.
Each output keeps its input's name and format; files already in --out with those names are
replaced, but an output never replaces an input. Photos run one per inference thread at a
time. Exit status: 0 when every input succeeded, 1 when some failed (each failure is named
on stderr), 2 for a usage error, 130 when Ctrl-C stopped the run.

Options:
  --out DIR         output folder (created if missing)
  --pipelines DIR   folder of pipeline files (default: ./pipelines, else the shipped ones)
  --threads N       inference threads (default: one per core on wasm, one on tfjs-node)
  --backend NAME    auto, tensorflow-gpu, tensorflow, wasm or cpu (default auto)`;

const RUN_OPTIONS = {
  out: { type: 'string' },
  pipelines: { type: 'string' },
  threads: { type: 'string' },
  root: { type: 'string' },
} as const;

interface RunInput {
  readonly inputPath: string;
  readonly outputPath: string;
}

export async function runCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('run', args, RUN_OPTIONS);
  if (values.help) {
    process.stdout.write(RUN_HELP + '\n');
    return 0;
  }

  const [pipelineName, ...targets] = positionals;
  const log = createLogger('run');
  const root = resolveRoot(values.root);
  const pipeline = findPipeline(await loadProjectPipelines(root, values.pipelines), pipelineName);
  if (pipeline.media === 'video') throw new DarkroomError('USAGE', `darkroom run: the ${pipeline.name} pipeline reads videos; scan them with "darkroom scan <videos> --out DIR"`);
  if (pipeline.media === 'photo-and-video') throw new DarkroomError('USAGE', `darkroom run: the ${pipeline.name} pipeline swaps faces in photos and videos; convert files at once with "darkroom faceswap --model DIR --to a|b <files> --out DIR"`);
  if (pipeline.media === 'request') throw new DarkroomError('USAGE', `darkroom run: the ${pipeline.name} pipeline processes dataset requests under watch; write a dataset at once with "darkroom generate vae|gan --count N --out DIR"`);
  if (typeof values.out !== 'string' || values.out === '') throw new DarkroomError('USAGE', 'darkroom run: missing --out DIR, the folder for the results');
  if (targets.length === 0) throw new DarkroomError('USAGE', 'darkroom run: missing the files or folders to process');

  const outDir = path.resolve(values.out);
  const inputs = await collectInputs(targets, outDir, pipeline.output.suffix, log);
  if (inputs.length === 0) throw new DarkroomError('USAGE', `darkroom run: no photos found in ${targets.join(', ')}`);
  await checkPipelineModels([pipeline]);
  await prepareOutputFolder(outDir, log);

  const pool = await createInferencePool({ backend: resolveBackendRequest(values.backend as string | undefined), threads: readThreads(values.threads), log });
  const signal = interruptSignal(() => log.info('Stopping: finishing the photos in progress (press Ctrl-C again to quit at once)'));
  const progress = new ProgressBar({ label: pipeline.name, total: inputs.length, unit: 'photo' });
  const failures: { input: string; message: string }[] = [];
  let done = 0;
  let next = 0;

  // Each runner takes the next input when its last one finishes, so at most
  // 2 x threads photos are in memory however many inputs there are.
  const runner = async (): Promise<void> => {
    while (next < inputs.length && !signal.aborted) {
      const input = inputs[next++];
      try {
        await mkdir(path.dirname(input.outputPath), { recursive: true });
        await pool.runPhoto(photoTaskFor(pipeline, input.inputPath, input.outputPath));
      } catch (error) {
        failures.push({ input: input.inputPath, message: (error as Error).message });
        log.error(`failed: ${describeFailure(input.inputPath, (error as Error).message)}`);
      }
      progress.update(++done, { failed: String(failures.length) });
    }
  };
  await Promise.all(Array.from({ length: pool.threads * 2 }, runner));
  progress.finish();
  await pool.close();

  const succeeded = done - failures.length;
  log.info(`${succeeded} of ${countOf(inputs.length, 'photo')} written to ${outDir}${failures.length > 0 ? `; ${failures.length} failed` : ''}`);
  if (signal.aborted) return 130;
  return failures.length > 0 ? 1 : 0;
}

/**
 * Checks that --out can be written, before any model loads, and removes the hidden partial
 * outputs that a killed run left there, as watch does in its outboxes.
 */
async function prepareOutputFolder(outDir: string, log: Logger): Promise<void> {
  await checkOutputFolders('run', [outDir]);

  const removed = await removeStaleTemporaries(outDir);
  if (removed > 0) log.info(`Removed ${countOf(removed, 'partial output')} left by an interrupted run in ${outDir}`);
}

/**
 * Expands files and folders into input/output pairs. Output names are unique within the run,
 * and an output that would replace one of the inputs is rejected before any work starts.
 */
async function collectInputs(targets: readonly string[], outDir: string, suffix: string, log: Logger): Promise<RunInput[]> {
  const inputs: RunInput[] = [];
  const used = new Set<string>();

  const add = (inputPath: string, relative: string): void => {
    const extension = path.extname(relative);
    const stem = relative.slice(0, relative.length - extension.length) + suffix;
    let outputPath = path.join(outDir, stem + extension);
    for (let n = 2; used.has(outputPath); n++) outputPath = path.join(outDir, `${stem}-${n}${extension}`);
    if (outputPath !== path.join(outDir, stem + extension)) log.info(`${inputPath} is written to ${outputPath}, because another input has the same name`);
    used.add(outputPath);
    inputs.push({ inputPath, outputPath });
  };

  for (const target of targets) {
    const absolute = path.resolve(target);
    const info = await stat(absolute).catch(() => undefined);
    if (info === undefined) throw new DarkroomError('USAGE', `darkroom run: ${target} not found`);
    if (info.isDirectory()) {
      for (const file of await listPhotosRecursive(absolute)) add(file, path.relative(absolute, file));
    } else {
      add(absolute, path.basename(absolute));
    }
  }
  for (const input of inputs) {
    if (inputs.some((other) => other.inputPath === input.outputPath)) {
      throw new DarkroomError('USAGE', `darkroom run: the output ${input.outputPath} would replace an input; choose another --out folder or set output.suffix in the pipeline file`);
    }
  }
  return inputs;
}

async function listPhotosRecursive(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && !entry.name.startsWith('.') && PHOTO_EXTENSIONS.has(path.extname(entry.name).toLowerCase()))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}
