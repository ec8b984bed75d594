import path from 'node:path';

import { createLogger } from '../log.js';
import { removeStaleTemporaries } from '../media/atomic.js';
import { createInferencePool } from '../pool/pool.js';
import { faceSwapTaskFor, generateTaskFor, photoTaskFor, videoTaskFor } from '../pool/tasks.js';
import { countOf } from '../text.js';
import { Journal } from '../watch/journal.js';
import { acquireWatchLock } from '../watch/lock.js';
import { startWatcher } from '../watch/watcher.js';
import { interruptSignal, parseCommandArgs } from './args.js';
import { resolveBackendRequest } from '../backend/select.js';
import { checkOutputFolders, loadProjectPipelines, readThreads, resolveRoot, runnablePipelines } from './project.js';

export const WATCH_HELP = `Usage: darkroom watch [--root DIR] [--pipelines DIR] [--threads N]

Watches inbox/<pipeline>/ for every pipeline file and writes results to outbox/<pipeline>/.
A pipeline whose model folder contains no model is skipped with a warning that names the
command that trains it.
Files that cannot be processed go to failed/<pipeline>/ with a .error.json that says why.
Files already in an inbox at start are processed; a journal in .darkroom/ makes sure that
nothing is processed twice across restarts. Ctrl-C finishes the photos in progress and stops.

Options:
  --root DIR        folder that holds inbox/, outbox/, failed/ and done/ (default: current folder)
  --pipelines DIR   folder of pipeline files (default: ROOT/pipelines, else the shipped ones)
  --threads N       inference threads (default: one per core on wasm, one on tfjs-node)
  --backend NAME    auto, tensorflow-gpu, tensorflow, wasm or cpu (default auto)`;

const WATCH_OPTIONS = {
  root: { type: 'string' },
  pipelines: { type: 'string' },
  threads: { type: 'string' },
} as const;

export async function watchCommand(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs('watch', args, WATCH_OPTIONS);
  if (values.help) {
    process.stdout.write(WATCH_HELP + '\n');
    return 0;
  }

  const log = createLogger('watch');
  const root = resolveRoot(values.root);
  const pipelines = await runnablePipelines(await loadProjectPipelines(root, values.pipelines), log);
  // A failed photo is not retried until it changes, so an unwritable outbox must stop watch at the start.
  await checkOutputFolders('watch', pipelines.flatMap((pipeline) => [path.join(root, 'outbox', pipeline.name), path.join(root, 'failed', pipeline.name)]));
  const lock = await acquireWatchLock(root);
  const pool = await createInferencePool({ backend: resolveBackendRequest(values.backend as string | undefined), threads: readThreads(values.threads), log });
  const journal = Journal.open(root);
  for (const pipeline of pipelines) {
    const removed = await removeStaleTemporaries(path.join(root, 'outbox', pipeline.name));
    if (removed > 0) log.info(`Removed ${countOf(removed, 'partial output')} left by an interrupted run in outbox/${pipeline.name}/`);
  }

  const watcher = startWatcher({
    root,
    pipelines,
    journal,
    // As many jobs as threads: every thread stays busy, and Ctrl-C waits only for the photos
    // that are running, because none wait inside the pool.
    maxInFlight: pool.threads,
    log,
    process: async (job) => {
      if (job.pipeline.media === 'video') {
        const scanned = await pool.runVideo(videoTaskFor(job.pipeline, job.inputPath, path.dirname(job.outputPath)));
        const lost = scanned.framesLost === null || scanned.framesLost === 0 ? '' : `, ${scanned.framesLost} frames that the container lists could not be decoded`;
        log.info(`${job.pipeline.name}: ${job.relPath}: ${countOf(scanned.frames, 'frame')}, ${scanned.segments} anomalous segment${scanned.segments === 1 ? '' : 's'}${lost}`);
        return { outputPath: scanned.outputPath };
      }
      if (job.pipeline.media === 'photo-and-video') {
        const swapped = await pool.runFaceSwap(faceSwapTaskFor(job.pipeline, job.inputPath, job.outputPath));
        const skipped = Object.entries(swapped.skipped).map(([reason, count]) => `${count} ${reason}`);
        const frames = swapped.kind === 'video' ? ` in ${countOf(swapped.frames, 'frame')}` : '';
        log.info(`${job.pipeline.name}: ${job.relPath}: ${swapped.facesSwapped} of ${countOf(swapped.facesFound, 'face')} swapped${frames}${skipped.length === 0 ? '' : `; left alone: ${skipped.join(', ')}`}`);
        return { outputPath: swapped.outputPath };
      }
      if (job.pipeline.media === 'request') {
        // The dataset goes to a folder named after the request file, without its extension.
        const outDir = job.outputPath.slice(0, job.outputPath.length - path.extname(job.outputPath).length);
        const generated = await pool.runGenerate(generateTaskFor(job.pipeline, job.inputPath, outDir));
        log.info(`${job.pipeline.name}: ${job.relPath}: ${countOf(generated.images, 'image')} in ${generated.seconds.toFixed(1)} s`);
        return { outputPath: generated.outputPath };
      }
      const result = await pool.runPhoto(photoTaskFor(job.pipeline, job.inputPath, job.outputPath));
      log.debug(`${job.pipeline.name}: ${job.relPath} is ${result.width}x${result.height}, model time ${result.seconds.toFixed(1)} s on thread ${result.threadId}`);
      return { outputPath: result.outputPath };
    },
  });

  const stopped = new Promise<void>((resolve) => {
    interruptSignal(() => {
      log.info('Stopping: finishing the files in progress (press Ctrl-C again to quit at once)');
      resolve();
    });
  });

  await watcher.ready;
  log.info(`Watching ${pipelines.map((pipeline) => `inbox/${pipeline.name}/`).join(', ')} under ${root}; press Ctrl-C to stop`);
  await stopped;

  await watcher.close();
  await pool.close();
  journal.close();
  await lock.release();
  log.debug('Pool and journal closed');
  return 0;
}
