import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';

import { DarkroomError } from '../errors.js';

/** A decoded IDX file (the MNIST format): unsigned bytes with their dimensions. */
export interface IdxArray {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

/** Type code of unsigned bytes, the only element type that image and label files use. */
const UBYTE = 0x08;

/** Class names of the datasets whose label files carry no names. */
export const KNOWN_CLASS_NAMES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'fashion-mnist': ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot'],
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
});

/**
 * Reads an IDX file, gzipped or not. The header is two zero bytes, the element type, the number
 * of dimensions and then each dimension as a big-endian 32-bit integer.
 */
export async function readIdx(file: string): Promise<IdxArray> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new DarkroomError('INVALID_INPUT', `${file} cannot be read: ${(error as Error).message}`, { file, cause: error });
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new DarkroomError('INVALID_INPUT', `${file} is truncated or corrupt: gunzip failed (${(error as Error).message})`, { file, cause: error });
    }
  }
  return parseIdx(bytes, file);
}

export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new DarkroomError('INVALID_INPUT', `${file} is not an IDX file: it does not start with two zero bytes`, { file });
  if (bytes[2] !== UBYTE) throw new DarkroomError('UNSUPPORTED_FORMAT', `${file} contains IDX elements of type 0x${bytes[2].toString(16)}; darkroom reads unsigned bytes (0x08) only`, { file });

  const rank = bytes[3];
  const headerBytes = 4 + 4 * rank;
  if (rank < 1 || bytes.length < headerBytes) throw new DarkroomError('INVALID_INPUT', `${file} is not an IDX file: its header is cut short`, { file });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: rank }, (_, index) => view.getUint32(4 + 4 * index, false));
  const expected = dims.reduce((product, dim) => product * dim, 1);
  const available = bytes.length - headerBytes;
  if (available < expected) {
    throw new DarkroomError('INVALID_INPUT', `${file} is truncated: its header announces ${dims.join('x')} values but only ${available} bytes follow`, { file });
  }
  return { dims, data: bytes.subarray(headerBytes, headerBytes + expected) };
}

/** Picks class names from a dataset name, or from the file path when it names a known dataset. */
export function classNamesFor(dataset: string | undefined, imagesFile: string, classCount: number): readonly string[] {
  const key = dataset ?? (/fashion/i.test(imagesFile) ? 'fashion-mnist' : undefined);
  const known = key === undefined ? undefined : KNOWN_CLASS_NAMES[key];
  if (known !== undefined && classCount <= known.length) return known;
  return Array.from({ length: classCount }, (_, index) => String(index));
}
