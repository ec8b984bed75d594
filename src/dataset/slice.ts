import sharp from 'sharp';

import { DarkroomError, invalidOption } from '../errors.js';
import type { DatasetImage } from './write.js';

export interface SliceOptions {
  readonly tileWidth: number;
  readonly tileHeight: number;
  /** Each block of this many tile rows is one class, numbered from 0; undefined writes one flat folder. */
  readonly rowsPerClass?: number;
  /** Share of each class's tiles written to test/ rather than train/; 0 writes no split. */
  readonly testFraction: number;
}

/** Parses "WxH", e.g. "20x20". */
export function parseTileSize(value: unknown): { tileWidth: number; tileHeight: number } {
  const match = typeof value === 'string' ? /^(\d+)x(\d+)$/.exec(value.trim()) : null;
  const width = match === null ? NaN : Number(match[1]);
  const height = match === null ? NaN : Number(match[2]);
  if (!(width >= 1 && height >= 1 && width <= 4096 && height <= 4096)) throw invalidOption('a tile size WxH such as 20x20', '--tile', value);
  return { tileWidth: width, tileHeight: height };
}

/** Parses "rows:N", the only labelling that sheets use so far. */
export function parseRowLabels(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const match = typeof value === 'string' ? /^rows:(\d+)$/.exec(value.trim()) : null;
  const rows = match === null ? NaN : Number(match[1]);
  if (!(rows >= 1)) throw invalidOption('rows:N, where each block of N tile rows is one class', '--labels', value);
  return rows;
}

/**
 * Decodes a sheet of equal tiles and yields each tile in row order. A sheet whose size is not a
 * multiple of the tile size is rejected rather than cropped, because a wrong --tile would
 * otherwise cut every tile across two images without a word.
 */
export async function sliceSheet(file: string, options: SliceOptions): Promise<{ tiles: DatasetImage[]; columns: number; rows: number }> {
  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    decoded = await sharp(file, { failOn: 'truncated' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new DarkroomError('INVALID_INPUT', `${file} is not an image sharp can decode: ${(error as Error).message}`, { file, cause: error });
  }
  const { width, height, channels } = decoded.info;
  const { tileWidth, tileHeight } = options;
  if (width % tileWidth !== 0 || height % tileHeight !== 0) {
    throw new DarkroomError('INVALID_INPUT', `${file} is ${width}x${height}, which is not a whole number of ${tileWidth}x${tileHeight} tiles`, { file });
  }

  const columns = width / tileWidth;
  const rows = height / tileHeight;
  const grey = channels === 1 || isGrey(decoded.data, channels);
  const outChannels: 1 | 3 = grey ? 1 : 3;
  const perClass = options.rowsPerClass === undefined ? undefined : options.rowsPerClass * columns;
  const tiles: DatasetImage[] = [];

  for (let row = 0; row < rows; row++) {
    for (let column = 0; column < columns; column++) {
      const index = row * columns + column;
      const pixels = new Uint8Array(tileWidth * tileHeight * outChannels);
      for (let y = 0; y < tileHeight; y++) {
        for (let x = 0; x < tileWidth; x++) {
          const source = ((row * tileHeight + y) * width + column * tileWidth + x) * channels;
          const target = (y * tileWidth + x) * outChannels;
          for (let c = 0; c < outChannels; c++) pixels[target + c] = decoded.data[source + c];
        }
      }
      const classIndex = perClass === undefined ? undefined : Math.floor(index / perClass);
      const indexInClass = perClass === undefined ? index : index % perClass;
      tiles.push({
        split: options.testFraction > 0 ? (isTestItem(indexInClass, options.testFraction) ? 'test' : 'train') : undefined,
        className: classIndex === undefined ? 'all' : String(classIndex),
        name: String(index).padStart(String(rows * columns - 1).length, '0'),
        width: tileWidth,
        height: tileHeight,
        channels: outChannels,
        pixels,
      });
    }
  }
  return { tiles, columns, rows };
}

/**
 * Spreads the test items evenly through each class (every 1/fraction-th item) instead of taking
 * the last ones, because sheets are often written in order by one writer after another.
 */
export function isTestItem(indexInClass: number, fraction: number): boolean {
  return Math.floor((indexInClass + 1) * fraction) > Math.floor(indexInClass * fraction);
}

function isGrey(data: Uint8Array, channels: number): boolean {
  for (let index = 0; index < data.length; index += channels) {
    if (data[index] !== data[index + 1] || data[index] !== data[index + 2]) return false;
  }
  return true;
}
