import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

import { DarkroomError, invalidOption } from '../errors.js';
import type { Point } from '../faces/detect.js';
import type { FaceRecord } from '../faces/extract.js';
import { FACESWAP_SIZES } from '../models/faceswap.js';
import { countOf } from '../text.js';
import { PHOTO_EXTENSIONS } from './photos.js';

/** Fewer crops than this cannot show a face in enough poses to learn it. */
export const MIN_FACES = 8;

const MANIFEST = 'faces.json';
/** How many crops are decoded at once; sharp runs them on libuv's thread pool. */
const CONCURRENCY = 16;

/** The aligned crops of one identity, read into memory. */
export interface FaceSet {
  /** The folder's name, or "<folder name> identity N" for one group of a `faces extract` output. */
  readonly name: string;
  readonly dir: string;
  readonly identity: number | undefined;
  readonly size: number;
  readonly count: number;
  /** count x size x size x 3, values in [0, 1]. */
  readonly images: Float32Array;
  /** Paths relative to `dir`. */
  readonly files: readonly string[];
  /** The faces' face-recognition descriptors from faces.json, when the folder has one. */
  readonly descriptors: readonly (readonly number[])[] | undefined;
  /**
   * Each crop's 68 landmarks in crop pixels, from faces.json: undefined for a crop whose landmarks
   * are missing or invalid, and for the whole set when there is no faces.json.
   */
  readonly landmarks: readonly (readonly Point[] | undefined)[] | undefined;
}

/**
 * Reads a folder of aligned face crops: the output of `darkroom faces extract` (its faces.json
 * names the crops, their descriptors and identity groups), or a plain folder of square images.
 * `identity` keeps one group of an extract output. `flag` names the option in messages.
 */
export async function readFaceSet(dir: string, identity: number | undefined, flag: string): Promise<FaceSet> {
  const manifest = await readManifest(dir, flag);
  let files: string[];
  let descriptors: number[][] | undefined;
  let landmarks: unknown[] | undefined;

  if (manifest !== undefined) {
    const faces = identity === undefined ? manifest : manifest.filter((face) => face.identity === identity);
    if (identity !== undefined && faces.length === 0) {
      const groups = [...new Set(manifest.map((face) => face.identity))].sort((x, y) => x - y);
      const sizes = groups.map((group) => `${group} (${countOf(manifest.filter((face) => face.identity === group).length, 'face')})`).join(', ');
      throw invalidOption(`an identity group of ${path.join(dir, MANIFEST)}: ${sizes || 'it has none'}`, `${flag}-identity`, identity);
    }
    files = faces.map((face) => face.file);
    descriptors = faces.map((face) => face.descriptor);
    landmarks = faces.map((face) => face.landmarks);
  } else {
    if (identity !== undefined) {
      throw new DarkroomError('USAGE', `${flag}-identity picks a group of a "darkroom faces extract" output, but ${dir} has no ${MANIFEST}; leave out ${flag}-identity to train on every crop in it`);
    }
    files = await listCrops(dir, flag);
  }

  const name = identity === undefined ? path.basename(path.resolve(dir)) : `${path.basename(path.resolve(dir))} identity ${identity}`;
  const described = identity === undefined ? dir : `${dir} (identity ${identity})`;
  if (files.length < MIN_FACES) {
    throw new DarkroomError('INVALID_INPUT', `${flag} ${described} contains ${files.length} face crop${files.length === 1 ? '' : 's'}; at least ${MIN_FACES} are needed to train`, { file: dir });
  }

  const decoded = await decodeCrops(dir, files);
  const size = decoded[0].width;
  for (const [index, crop] of decoded.entries()) {
    if (crop.width !== crop.height || crop.width !== size) {
      throw new DarkroomError('INVALID_INPUT', `Face crops in ${flag} ${described} differ in size: ${files[0]} is ${size}x${decoded[0].height}, ${files[index]} is ${crop.width}x${crop.height}; use crops of one "darkroom faces extract" run`, { file: dir });
    }
  }
  if (!(FACESWAP_SIZES as readonly number[]).includes(size)) {
    throw new DarkroomError('INVALID_INPUT', `Face crops in ${flag} ${described} are ${size}x${size}; face-swap models take square crops of ${FACESWAP_SIZES.join(' or ')} pixels ("darkroom faces extract --size 64")`, { file: dir });
  }

  const pixels = size * size * 3;
  const images = new Float32Array(files.length * pixels);
  decoded.forEach((crop, index) => {
    for (let i = 0; i < pixels; i++) images[index * pixels + i] = crop.data[i] / 255;
  });
  return { name, dir: path.resolve(dir), identity, size, count: files.length, images, files, descriptors, landmarks: landmarks?.map((points) => validLandmarks(points, size)) };
}

/** Returns the landmarks when they are 68 points of finite numbers, none farther than one crop side outside the crop, else undefined. */
function validLandmarks(points: unknown, size: number): Point[] | undefined {
  if (!Array.isArray(points) || points.length !== 68) return undefined;
  const inReach = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value >= -size && value <= 2 * size;
  return points.every((point) => Array.isArray(point) && point.length === 2 && inReach(point[0]) && inReach(point[1])) ? (points as Point[]) : undefined;
}

async function readManifest(dir: string, flag: string): Promise<FaceRecord[] | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, MANIFEST), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DarkroomError('INVALID_INPUT', `${flag} ${dir} cannot be read: ${(error as Error).message}`, { file: dir, cause: error });
  }
  try {
    const faces = (JSON.parse(text) as { faces?: FaceRecord[] }).faces;
    if (!Array.isArray(faces)) throw new Error('it has no "faces" list');
    return faces;
  } catch (error) {
    throw new DarkroomError('INVALID_INPUT', `${path.join(dir, MANIFEST)} is not a "darkroom faces extract" manifest: ${(error as Error).message}`, { file: dir, cause: error });
  }
}

async function listCrops(dir: string, flag: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => !name.startsWith('.') && PHOTO_EXTENSIONS.has(path.extname(name).toLowerCase())).sort();
  } catch (error) {
    throw new DarkroomError('INVALID_INPUT', `${flag} ${dir} cannot be read: ${(error as Error).message}`, { file: dir, cause: error });
  }
}

async function decodeCrops(dir: string, files: readonly string[]): Promise<{ width: number; height: number; data: Uint8Array }[]> {
  const decoded: { width: number; height: number; data: Uint8Array }[] = [];
  for (let start = 0; start < files.length; start += CONCURRENCY) {
    const batch = files.slice(start, start + CONCURRENCY);
    decoded.push(
      ...(await Promise.all(
        batch.map(async (file) => {
          const { data, info } = await sharp(path.join(dir, file))
            .removeAlpha()
            .toColourspace('srgb')
            .raw()
            .toBuffer({ resolveWithObject: true })
            .catch((error: Error) => {
              throw new DarkroomError('INVALID_INPUT', `Face crop ${path.join(dir, file)} cannot be decoded: ${error.message}`, { file: path.join(dir, file), cause: error });
            });
          return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
        }),
      )),
    );
  }
  return decoded;
}

/** A digest of the crops of both sets, so that a resume on other crops is refused. */
/** Copies the crops at `indices` of a set into one array, in that order. */
export function gatherCrops(set: FaceSet, indices: readonly number[]): Float32Array {
  const pixels = set.size * set.size * 3;
  const out = new Float32Array(indices.length * pixels);
  indices.forEach((item, index) => out.set(set.images.subarray(item * pixels, (item + 1) * pixels), index * pixels));
  return out;
}

export function faceSetsFingerprint(sets: readonly FaceSet[]): string {
  const hash = createHash('sha256');
  for (const set of sets) hash.update(`${set.dir}\n${set.identity ?? ''}\n${set.files.join('\n')}\n\n`);
  return hash.digest('hex').slice(0, 16);
}
