import * as tf from '@tensorflow/tfjs-core';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError } from '../errors.js';
import type { Logger } from '../log.js';
import { temporaryPathFor, writeFileAtomic } from '../media/atomic.js';
import type { LoadedGenerator } from '../models/generator-storage.js';
import { ProgressBar } from '../progress.js';
import { SeededRandom } from '../train/random.js';
import { GAN_TRAINING } from '../train/gan.js';
import type { GeneratorTrainingTask } from '../train/generator-trainer.js';
import { VAE_TRAINING } from '../train/vae.js';
import { encodePng, toBytes } from './grid.js';
import { assertEmptyOrMissing } from '../dataset/write.js';

export const SAMPLERS: Readonly<Record<string, GeneratorTrainingTask>> = { vae: VAE_TRAINING, gan: GAN_TRAINING };
export const MANIFEST_FILE = 'manifest.csv';

export interface GenerateOptions {
  readonly count: number;
  readonly out: string;
  /** Only this class; undefined cycles through all classes, so that they come out balanced. */
  readonly className?: string;
  /** Image i is drawn from seed + i, which the manifest records. */
  readonly seed: number;
  readonly batchSize: number;
  /** Draws a progress bar on stderr; workers under `watch` turn it off. */
  readonly progress?: boolean;
  /** Stops between batches when aborted (Ctrl-C), with an error that removes the partial dataset. */
  readonly signal?: AbortSignal;
}

export interface GeneratedImage {
  readonly file: string;
  readonly className: string;
  readonly seed: number;
}

/** Draws the latent or noise vector of one image from its own seed, so that any image can be made again alone. */
export function latentForSeed(seed: number, latentDim: number): Float32Array {
  const random = new SeededRandom(seed);
  return Float32Array.from({ length: latentDim }, () => random.nextGaussian());
}

/** Checks a class name against the model's classes and returns its index. */
export function classIndexOf(loaded: LoadedGenerator, className: string | undefined): number | undefined {
  const { classes } = loaded.metadata.generator;
  if (className === undefined) return undefined;
  if (classes.length === 0) throw new DarkroomError('USAGE', `${loaded.dir} was trained without classes, so --class cannot choose one`);
  const index = classes.indexOf(className);
  if (index < 0) throw new DarkroomError('INVALID_OPTION', `Expected one of ${classes.join(', ')} for --class but received ${JSON.stringify(className)}`);
  return index;
}

/** Runs the model on latent vectors with class indices (-1 without classes) and returns images in [0, 1]. */
export function sampleImages(loaded: LoadedGenerator, latent: Float32Array, labels: Int32Array): Float32Array {
  const { latentDim, classes } = loaded.metadata.generator;
  const count = labels.length;
  const sampler = SAMPLERS[loaded.metadata.task];
  const images = tf.tidy(() => {
    const oneHot = classes.length === 0 ? undefined : (tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classes.length), 'float32') as tf.Tensor2D);
    return sampler.sample(loaded.networks as never, tf.tensor2d(latent, [count, latentDim]), oneHot);
  });
  const pixels = images.dataSync() as Float32Array;
  images.dispose();
  return pixels;
}

/**
 * Writes `count` generated images as PNG files in class sub-folders, with manifest.csv
 * (file,class,model,seed). Images are made and written one batch at a time, so memory does not
 * grow with the count; each PNG is written atomically, and the manifest is renamed into place
 * after the last image, so a folder with a manifest is complete.
 */
export async function generateDataset(loaded: LoadedGenerator, options: GenerateOptions, log: Logger): Promise<GeneratedImage[]> {
  const { imageSize, channels, classes, latentDim } = loaded.metadata.generator;
  const onlyClass = classIndexOf(loaded, options.className);
  await assertEmptyOrMissing(options.out);
  await mkdir(options.out, { recursive: true });

  const modelName = path.basename(loaded.dir);
  const manifestPath = path.join(options.out, MANIFEST_FILE);
  const partial = path.join(options.out, `.${MANIFEST_FILE}.partial`);
  const manifest = await open(partial, 'w');
  await manifest.write('file,class,model,seed\n');
  const digits = String(options.seed + options.count - 1).length;
  const progress = options.progress === false ? undefined : new ProgressBar({ label: `generate ${loaded.metadata.task}`, total: options.count, unit: 'image' });
  const written: GeneratedImage[] = [];
  const folders = new Set<string>();
  const pixels = imageSize * imageSize * channels;
  const started = performance.now();

  try {
    for (let start = 0; start < options.count; start += options.batchSize) {
      if (options.signal?.aborted) throw new DarkroomError('INTERRUPTED', `Stopped after ${start} of ${options.count} images; the partial dataset was removed`);
      const size = Math.min(options.batchSize, options.count - start);
      const seeds = Array.from({ length: size }, (_, index) => options.seed + start + index);
      const labels = Int32Array.from(seeds, (_, index) => (classes.length === 0 ? -1 : (onlyClass ?? (start + index) % classes.length)));
      const latent = new Float32Array(size * latentDim);
      seeds.forEach((seed, index) => latent.set(latentForSeed(seed, latentDim), index * latentDim));
      const bytes = toBytes(sampleImages(loaded, latent, labels));

      const rows: string[] = [];
      await Promise.all(
        seeds.map(async (seed, index) => {
          const className = labels[index] < 0 ? '' : classes[labels[index]];
          const relative = path.join(className, `${String(seed).padStart(digits, '0')}.png`);
          const folder = path.join(options.out, className);
          if (!folders.has(folder)) {
            folders.add(folder);
            await mkdir(folder, { recursive: true });
          }
          const png = await encodePng(bytes.subarray(index * pixels, (index + 1) * pixels), imageSize, imageSize, channels);
          await writeFileAtomic(path.join(options.out, relative), png);
          rows[index] = `${csvField(relative.split(path.sep).join('/'))},${csvField(className)},${csvField(modelName)},${seed}\n`;
          written[start + index] = { file: relative, className, seed };
        }),
      );
      await manifest.write(rows.join(''));
      progress?.update(start + size);
    }
    await manifest.sync();
    await manifest.close();
    await rename(partial, manifestPath);
  } catch (error) {
    await manifest.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw error;
  }
  progress?.finish();
  const seconds = (performance.now() - started) / 1000;
  log.debug(`${options.count} images in ${seconds.toFixed(1)} s (${(options.count / seconds).toFixed(0)} images/s)`);
  return written;
}

/**
 * Generates into a hidden folder beside `options.out` and renames it to `out` at the end, so
 * that a watched outbox shows the whole dataset or nothing. A dataset from an earlier run of
 * the same request is replaced.
 */
export async function generateDatasetAtomically(loaded: LoadedGenerator, options: GenerateOptions, log: Logger): Promise<GeneratedImage[]> {
  const staging = temporaryPathFor(options.out);
  try {
    const written = await generateDataset(loaded, { ...options, out: staging }, log);
    await rm(options.out, { recursive: true, force: true });
    await rename(staging, options.out);
    log.info(`Wrote ${options.count} image${options.count === 1 ? '' : 's'} and ${MANIFEST_FILE} to ${options.out}`);
    return written;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

function csvField(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
