import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

import { DarkroomError } from '../errors.js';
import type { Logger } from '../log.js';

/** File endings that training reads as photos. */
export const PHOTO_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.avif']);

export interface TrainingPhoto {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  /** sRGB, HWC, 3 channels, EXIF orientation applied. */
  readonly rgb: Uint8Array;
}

function unreadableFolderReason(error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return 'it does not exist';
  if (error.code === 'ENOTDIR') return 'it is a file, not a folder';
  return `it cannot be read (${error.message})`;
}

/** Lists the photos in a folder (not recursive), sorted by name. */
export async function listPhotos(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    throw new DarkroomError('INVALID_INPUT', `Data folder ${dir}: ${unreadableFolderReason(error as NodeJS.ErrnoException)}; give --data a folder of photos`, {
      file: dir,
      cause: error,
    });
  }
  return entries
    .filter((name) => !name.startsWith('.') && PHOTO_EXTENSIONS.has(path.extname(name).toLowerCase()))
    .sort()
    .map((name) => path.join(dir, name));
}

/**
 * Splits file names into training and validation sets by a hash of the name, so the split is
 * stable when photos are added or removed, and at least one photo is held out when there are two.
 */
export function splitByName(files: readonly string[], validationFraction: number): { train: string[]; validation: string[] } {
  const ranked = [...files].sort((a, b) => hashName(a).localeCompare(hashName(b)));
  let validationCount = Math.round(files.length * validationFraction);
  if (validationFraction > 0 && files.length >= 2) validationCount = Math.max(1, validationCount);
  const validation = new Set(ranked.slice(0, validationCount));
  return {
    train: files.filter((file) => !validation.has(file)),
    validation: files.filter((file) => validation.has(file)),
  };
}

function hashName(file: string): string {
  return createHash('sha1').update(path.basename(file)).digest('hex');
}

/**
 * Decodes photos for training into memory. Photos larger than `maxSide` on their long side are
 * scaled down first: that bounds memory for folders of camera photos, and downscaling also
 * averages away the sensor noise and JPEG artefacts that a clean target should not contain.
 */
export async function loadPhotos(files: readonly string[], maxSide: number, log: Logger): Promise<TrainingPhoto[]> {
  const photos: TrainingPhoto[] = [];
  for (const file of files) {
    try {
      const { data, info } = await sharp(file, { failOn: 'truncated' })
        .rotate()
        .removeAlpha()
        .toColourspace('srgb')
        .resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true })
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels instead of 3`);
      photos.push({ name: path.basename(file), width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    } catch (error) {
      log.warn(`Skipping ${file}: it cannot be decoded (${(error as Error).message})`);
    }
  }
  return photos;
}
