import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

import { DarkroomError } from '../errors.js';
import type { Logger } from '../log.js';
import { ProgressBar } from '../progress.js';
import { PHOTO_EXTENSIONS } from '../train/photos.js';

/** Images of one size in memory, in the form a model reads them, with their classes. */
export interface ImageDataset {
  readonly count: number;
  readonly size: number;
  readonly channels: 1 | 3;
  /** count x size x size x channels, values in [0, 1]. */
  readonly images: Float32Array;
  /** Index into `classes` per image; -1 for every image when the folder has no class sub-folders. */
  readonly labels: Int32Array;
  readonly classes: readonly string[];
  /** Paths relative to the dataset folder, in the order of `images`. */
  readonly files: readonly string[];
}

export interface LoadDatasetOptions {
  readonly size: number;
  /** 'auto' takes grey when every image of a sample of the folder is grey. */
  readonly channels: 1 | 3 | 'auto';
  /** Reads at most this many images per class (or in all, without classes), the first by name. */
  readonly limitPerClass?: number;
  /** The class names a model was trained with, so that labels index the same list. */
  readonly classes?: readonly string[];
}

/** How many decodes run at once; sharp runs them on libuv's thread pool. */
const CONCURRENCY = 16;
const CHANNEL_SAMPLE = 64;

/** Lists a dataset folder: its class sub-folders with their images, or its own images. */
export async function listImageDataset(dir: string): Promise<{ classes: string[]; files: { file: string; classIndex: number }[] }> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new DarkroomError('INVALID_INPUT', `Dataset folder ${dir} cannot be read: ${(error as Error).message}`, { file: dir, cause: error });
  }

  const folders = entries.filter((entry) => entry.isDirectory() && !entry.name.startsWith('.')).map((entry) => entry.name).sort();
  const classes: string[] = [];
  const files: { file: string; classIndex: number }[] = [];
  for (const folder of folders) {
    const images = (await readdir(path.join(dir, folder))).filter(isImageName).sort();
    if (images.length === 0) continue;
    classes.push(folder);
    for (const image of images) files.push({ file: path.join(folder, image), classIndex: classes.length - 1 });
  }
  if (classes.length === 0) {
    for (const entry of entries.filter((item) => item.isFile() && isImageName(item.name)).map((item) => item.name).sort()) files.push({ file: entry, classIndex: -1 });
  }
  if (files.length === 0) throw new DarkroomError('INVALID_INPUT', `No images (${[...PHOTO_EXTENSIONS].join(', ')}) found in ${dir} or in its sub-folders`, { file: dir });
  return { classes, files };
}

/**
 * Decodes every image of a dataset folder to `size` x `size` (centre-cropped to a square first),
 * grey or colour, scaled to [0, 1]. Files that cannot be decoded are skipped with a warning
 * naming them, so that one bad file does not stop a training run of thousands.
 */
export async function loadImageDataset(dir: string, options: LoadDatasetOptions, log: Logger): Promise<ImageDataset> {
  const listed = await listImageDataset(dir);
  const classes = options.classes ?? listed.classes;
  const remap = listed.classes.map((name) => classes.indexOf(name));
  const unknown = listed.classes.filter((_, index) => remap[index] < 0);
  if (options.classes !== undefined && unknown.length > 0) {
    throw new DarkroomError('INVALID_INPUT', `${dir} has classes that are not in the model: ${unknown.join(', ')} (the model's classes are ${classes.join(', ')})`, { file: dir });
  }

  const perClass = new Map<number, number>();
  const chosen = listed.files.filter((item) => {
    const taken = perClass.get(item.classIndex) ?? 0;
    if (options.limitPerClass !== undefined && taken >= options.limitPerClass) return false;
    perClass.set(item.classIndex, taken + 1);
    return true;
  });

  const channels = options.channels === 'auto' ? await guessChannels(dir, chosen.map((item) => item.file)) : options.channels;
  const { size } = options;
  const pixelCount = size * size * channels;
  const images = new Float32Array(chosen.length * pixelCount);
  const labels = new Int32Array(chosen.length);
  const files: string[] = [];
  const skipped: string[] = [];
  const progress = new ProgressBar({ label: `reading ${path.basename(dir)}`, total: chosen.length, unit: 'image' });
  let count = 0;

  for (let start = 0; start < chosen.length; start += CONCURRENCY) {
    const batch = chosen.slice(start, start + CONCURRENCY);
    const decoded = await Promise.all(batch.map((item) => decodeSquare(path.join(dir, item.file), size, channels).catch((error: Error) => error)));
    decoded.forEach((result, index) => {
      const item = batch[index];
      if (result instanceof Error) {
        skipped.push(item.file);
        log.warn(`Skipping ${path.join(dir, item.file)}: it cannot be decoded (${result.message})`);
        return;
      }
      for (let i = 0; i < pixelCount; i++) images[count * pixelCount + i] = result[i] / 255;
      labels[count] = item.classIndex < 0 ? -1 : remap[item.classIndex];
      files.push(item.file);
      count++;
    });
    progress.update(start + batch.length);
  }
  progress.finish();

  if (count === 0) throw new DarkroomError('INVALID_INPUT', `None of the ${chosen.length} images in ${dir} could be decoded`, { file: dir });
  log.info(
    `Read ${count} images from ${dir}${classes.length > 0 ? ` in ${classes.length} classes (${classes.join(', ')})` : ' without classes'}: ` +
      `centre-cropped to squares, resized to ${size}x${size}, ${channels === 1 ? 'grey' : 'colour'}, values scaled to [0, 1]` +
      (skipped.length > 0 ? `; skipped ${skipped.length} that could not be decoded` : ''),
  );
  return { count, size, channels, images: images.subarray(0, count * pixelCount), labels: labels.subarray(0, count), classes, files };
}

/** Decodes an image centre-cropped to a square of `size`, grey or sRGB, as bytes. */
export async function decodeSquare(file: string, size: number, channels: 1 | 3): Promise<Uint8Array> {
  let pipeline = sharp(file, { failOn: 'truncated' }).rotate().removeAlpha().resize(size, size, { fit: 'cover', kernel: 'lanczos3' });
  pipeline = channels === 1 ? pipeline.toColourspace('b-w') : pipeline.toColourspace('srgb');
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== channels) throw new Error(`decoded to ${info.channels} channels instead of ${channels}`);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Grey when a sample of the images, spread through the list, all decode to one channel or equal RGB. */
async function guessChannels(dir: string, files: readonly string[]): Promise<1 | 3> {
  const step = Math.max(1, Math.floor(files.length / CHANNEL_SAMPLE));
  for (let index = 0; index < files.length; index += step) {
    try {
      const { data, info } = await sharp(path.join(dir, files[index])).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      if (info.channels === 1) continue;
      for (let i = 0; i < data.length; i += info.channels) {
        if (data[i] !== data[i + 1] || data[i] !== data[i + 2]) return 3;
      }
    } catch {
      // An undecodable file is reported when the dataset is read, and it shows nothing about colour.
    }
  }
  return 1;
}

function isImageName(name: string): boolean {
  return !name.startsWith('.') && PHOTO_EXTENSIONS.has(path.extname(name).toLowerCase());
}

/** True when `dir` exists and is a folder. */
export async function isFolder(dir: string): Promise<boolean> {
  return stat(dir).then((info) => info.isDirectory(), () => false);
}
