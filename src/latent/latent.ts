import * as tf from '@tensorflow/tfjs-core';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { decodeSquare, type ImageDataset, loadImageDataset } from '../dataset/folder.js';
import { DarkroomError } from '../errors.js';
import { classIndexOf, latentForSeed, sampleImages } from '../generate/generate.js';
import { encodePng, toBytes, writeGrid } from '../generate/grid.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../media/atomic.js';
import type { LoadedGenerator } from '../models/generator-storage.js';
import { withClasses } from '../models/vae.js';
import { clusterPurity, kMeans, projectTo2d } from './analysis.js';
import { renderLatentMap } from './plot.js';

/** Returns the class index to condition on: the requested one, else the first class, or -1 without classes. */
function conditionOf(loaded: LoadedGenerator, className: string | undefined): number {
  return classIndexOf(loaded, className) ?? (loaded.metadata.generator.classes.length > 0 ? 0 : -1);
}

export interface TraverseOptions {
  readonly out: string;
  readonly className?: string;
  /** The other dimensions stay at the latent vector of this seed; 0 keeps them at the prior mean, zero. */
  readonly seed: number;
  readonly dims: number;
  readonly steps: number;
  readonly range: number;
}

/**
 * Writes a grid with one row per latent dimension: along the row, that dimension runs from -range to
 * +range while the others stay fixed, which shows what each dimension has learned to control.
 */
export async function traverseLatent(loaded: LoadedGenerator, options: TraverseOptions): Promise<void> {
  const { latentDim, imageSize, channels } = loaded.metadata.generator;
  const condition = conditionOf(loaded, options.className);
  const dims = Math.min(options.dims, latentDim);
  const base = options.seed === 0 ? new Float32Array(latentDim) : latentForSeed(options.seed, latentDim);
  const count = dims * options.steps;
  const latent = new Float32Array(count * latentDim);
  for (let dim = 0; dim < dims; dim++) {
    for (let step = 0; step < options.steps; step++) {
      const row = dim * options.steps + step;
      latent.set(base, row * latentDim);
      latent[row * latentDim + dim] = -options.range + (2 * options.range * step) / Math.max(1, options.steps - 1);
    }
  }
  const pixels = sampleImages(loaded, latent, new Int32Array(count).fill(condition));
  await prepareOutputFile(options.out);
  await writeGrid(options.out, { count, size: imageSize, channels, pixels }, { columns: options.steps, scale: 2 });
}

export interface InterpolateOptions {
  readonly out: string;
  readonly frames: number;
  readonly className?: string;
}

/**
 * Frames between two points of the latent space, written as frame-NN.png and strip.png. For a
 * VAE the points are two images, encoded to their latent means; a GAN has no encoder, so its
 * points are two seeds. Interpolation is spherical, because Gaussian latent vectors lie near a
 * sphere and a straight line between two of them passes through improbable short vectors.
 */
export async function interpolateLatent(loaded: LoadedGenerator, a: string, b: string, options: InterpolateOptions): Promise<string[]> {
  const { latentDim, imageSize, channels } = loaded.metadata.generator;
  const condition = conditionOf(loaded, options.className ?? classFromFolder(loaded, a));
  const [start, end] = loaded.metadata.task === 'vae' ? await Promise.all([encodeFile(loaded, a, condition), encodeFile(loaded, b, condition)]) : [seedOf(a), seedOf(b)].map((seed) => latentForSeed(seed, latentDim));

  const latent = new Float32Array(options.frames * latentDim);
  for (let frame = 0; frame < options.frames; frame++) latent.set(slerp(start, end, frame / Math.max(1, options.frames - 1)), frame * latentDim);
  const pixels = sampleImages(loaded, latent, new Int32Array(options.frames).fill(condition));

  await mkdir(options.out, { recursive: true });
  const bytes = toBytes(pixels);
  const size = imageSize * imageSize * channels;
  const written: string[] = [];
  for (let frame = 0; frame < options.frames; frame++) {
    const file = path.join(options.out, `frame-${String(frame).padStart(2, '0')}.png`);
    await writeFileAtomic(file, await encodePng(bytes.subarray(frame * size, (frame + 1) * size), imageSize, imageSize, channels));
    written.push(file);
  }
  const strip = path.join(options.out, 'strip.png');
  await writeGrid(strip, { count: options.frames, size: imageSize, channels, pixels }, { columns: options.frames, scale: 3 });
  written.push(strip);
  return written;
}

function seedOf(value: string): number {
  const seed = Number(value);
  if (!Number.isInteger(seed) || seed < 0) throw new DarkroomError('USAGE', `A GAN has no encoder, so latent interpolate takes two seeds for it; expected a seed but received ${JSON.stringify(value)}`);
  return seed;
}

/** Returns the class named by an image's folder, when the folder has a class name of the model. */
function classFromFolder(loaded: LoadedGenerator, file: string): string | undefined {
  const folder = path.basename(path.dirname(path.resolve(file)));
  return loaded.metadata.generator.classes.includes(folder) ? folder : undefined;
}

async function encodeFile(loaded: LoadedGenerator, file: string, condition: number): Promise<Float32Array> {
  const { imageSize, channels } = loaded.metadata.generator;
  if ((await stat(file).catch(() => undefined)) === undefined) {
    throw new DarkroomError('USAGE', `${file} does not exist; latent interpolate takes two images for a VAE (two seeds only for a GAN)`, { file });
  }
  let decoded: Uint8Array;
  try {
    decoded = await decodeSquare(file, imageSize, channels);
  } catch (error) {
    throw new DarkroomError('INVALID_INPUT', `${file} is not an image that can be decoded: ${(error as Error).message}`, { file, cause: error });
  }
  const images = Float32Array.from(decoded, (value) => value / 255);
  return encodeMeans(loaded, images, 1, Int32Array.of(condition));
}

/** Latent means (mu) of images in [0, 1], in batches. */
export function encodeMeans(loaded: LoadedGenerator, images: Float32Array, count: number, labels: Int32Array): Float32Array {
  const { imageSize, channels, latentDim, classes } = loaded.metadata.generator;
  const pixels = imageSize * imageSize * channels;
  const means = new Float32Array(count * latentDim);
  const batchSize = 500;
  for (let start = 0; start < count; start += batchSize) {
    const size = Math.min(batchSize, count - start);
    const mu = tf.tidy(() => {
      const batch = tf.tensor4d(images.subarray(start * pixels, (start + size) * pixels), [size, imageSize, imageSize, channels]);
      const oneHot = classes.length === 0 ? undefined : tf.cast(tf.oneHot(tf.tensor1d(labels.subarray(start, start + size), 'int32'), classes.length), 'float32');
      const [mean] = loaded.networks.encoder.apply(withClasses(batch, oneHot), { training: false }) as tf.Tensor[];
      return mean.dataSync() as Float32Array;
    });
    means.set(mu, start * latentDim);
  }
  return means;
}

/** Spherical interpolation; falls back to a straight line for nearly parallel vectors. */
export function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    normA += a[i] * a[i];
    normB += b[i] * b[i];
  }
  const cosine = dot / Math.sqrt(normA * normB || 1);
  const omega = Math.acos(Math.min(1, Math.max(-1, cosine)));
  if (Math.abs(Math.sin(omega)) < 1e-6) return Float32Array.from(a, (value, i) => value + t * (b[i] - value));
  const wa = Math.sin((1 - t) * omega) / Math.sin(omega);
  const wb = Math.sin(t * omega) / Math.sin(omega);
  return Float32Array.from(a, (value, i) => wa * value + wb * b[i]);
}

export interface LatentMapOptions {
  readonly data: string;
  readonly out: string;
  readonly clusters?: number;
  readonly limitPerClass?: number;
  readonly seed: number;
}

export interface LatentMapResult {
  readonly images: number;
  readonly clusters: number;
  readonly purity: number;
  readonly projection: 'latent' | 'pca';
  readonly clusterSizes: readonly number[];
  /** The class most common in each cluster. */
  readonly clusterClasses: readonly string[];
}

/**
 * Encodes a labelled folder, draws each image's latent mean as a point in 2D coloured by its
 * class, clusters the latent means with k-means and measures the clusters' purity against
 * the classes.
 */
export async function mapLatent(loaded: LoadedGenerator, options: LatentMapOptions, log: Logger): Promise<LatentMapResult> {
  if (loaded.metadata.task !== 'vae') throw new DarkroomError('USAGE', `${loaded.dir} is a ${loaded.metadata.task}; latent map needs a VAE, whose encoder places images in the latent space`);
  const { imageSize, channels, latentDim, classes } = loaded.metadata.generator;
  const dataset: ImageDataset = await loadImageDataset(options.data, { size: imageSize, channels, classes: classes.length > 0 ? classes : undefined, limitPerClass: options.limitPerClass }, log);
  if (dataset.classes.length === 0) throw new DarkroomError('INVALID_INPUT', `${options.data} has no class sub-folders, so latent map has no classes to colour and compare clusters with`);
  // A conditional encoder needs each image's class as input; an unconditional one takes none.
  const means = encodeMeans(loaded, dataset.images, dataset.count, dataset.labels);
  const points = projectTo2d(means, dataset.count, latentDim);
  const k = options.clusters ?? dataset.classes.length;
  if (k > dataset.count) throw new DarkroomError('INVALID_OPTION', `Expected at most ${dataset.count} (the number of images) for --clusters but received ${k}`);
  const clusters = kMeans(means, dataset.count, latentDim, k, options.seed);
  const purity = clusterPurity(clusters, dataset.labels, k, dataset.classes.length);

  const projection = latentDim === 2 ? 'latent' : 'pca';
  const png = await renderLatentMap({
    title: `${path.basename(loaded.dir)}: ${dataset.count} images of ${path.basename(path.resolve(options.data))}, ${projection === 'latent' ? 'latent means' : `first two principal components of ${latentDim}-D latent means`}; k-means purity ${(100 * purity.purity).toFixed(1)} %`,
    points,
    labels: dataset.labels,
    classes: dataset.classes,
  });
  await prepareOutputFile(options.out);
  await writeFileAtomic(options.out, png);
  return {
    images: dataset.count,
    clusters: k,
    purity: purity.purity,
    projection,
    clusterSizes: Array.from(purity.sizes),
    clusterClasses: Array.from(purity.majority, (index) => dataset.classes[index]),
  };
}

/** Creates the parent folders of an output file, and rejects a path that is a folder. */
async function prepareOutputFile(file: string): Promise<void> {
  if ((await stat(file).catch(() => undefined))?.isDirectory()) throw new DarkroomError('USAGE', `${file} is a folder; give --out a file name such as map.png`, { file });
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
}
