/**
 * Runs one 6000x4000 photo through a one-thread pool and prints the peak resident memory of
 * this process as JSON. `bench/run.ts` starts it as a child process so that the high-water
 * mark belongs to this photo alone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

import { createLogger, setLogLevel } from '../src/log.js';
import { DEFAULT_TILE_OPTIONS } from '../src/pipeline/steps.js';
import { createInferencePool } from '../src/pool/pool.js';

const [source, modelDir] = process.argv.slice(2);
setLogLevel('warn');
const work = await mkdtemp(path.join(os.tmpdir(), 'darkroom-large-'));
const input = path.join(work, 'large.jpg');
await sharp(source).resize(6000, 4000, { fit: 'cover' }).jpeg({ quality: 95 }).toFile(input);

const pool = await createInferencePool({ backend: 'auto', threads: 1, log: createLogger('bench') });
const started = performance.now();
await pool.runPhoto({
  inputPath: input,
  outputPath: path.join(work, 'large-out.jpg'),
  steps: [{ step: 'denoise', model: modelDir, options: { ...DEFAULT_TILE_OPTIONS } }],
  maxPixels: 1e8,
  maxFileBytes: 2 ** 30,
});
const seconds = (performance.now() - started) / 1000;
await pool.close();

process.stdout.write(JSON.stringify({ width: 6000, height: 4000, seconds, peakRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
await rm(work, { recursive: true, force: true });
