/**
 * Tiled inference for fully convolutional models: the image goes through the model in
 * overlapping tiles, and the tile outputs are blended with a smooth weight window so that
 * no seam shows. This bounds the memory that the model and the blending need, whatever the
 * photo size.
 */
import { DarkroomError, invalidOption } from '../errors.js';

/** An 8-bit image in row-major HWC order. */
export interface TiledInput {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

/**
 * Runs the model on one tile. `tile` is tileHeight x tileWidth x channels in HWC order with
 * values in [0, 1]. Returns (tileHeight * scale) x (tileWidth * scale) x outChannels values
 * in HWC order, nominally in [0, 1]. runTiled allocates a new `tile` array for every call,
 * so the callee may keep it.
 */
export type TileInference = (tile: Float32Array, tileHeight: number, tileWidth: number, channels: number) => Promise<Float32Array>;

/** Memory and tile counts of one runTiled call, for logging and tests. */
export interface TiledStats {
  /** Tile size in input pixels that every infer call received. */
  tileWidth: number;
  tileHeight: number;
  tileCount: number;
  /** Maximum number of output rows that held float accumulators at the same time. */
  maxBandRows: number;
  /** Bytes allocated for the float accumulator band. */
  bandBytes: number;
}

export interface TiledOptions {
  /** Maximum edge length of a tile, in input pixels. Along each axis, tiles shrink to the smallest length that covers it with the same overlap. */
  tileSize: number;
  /**
   * Context in input pixels around the part of a tile that gets full weight. Neighbouring
   * tiles overlap by at least 2 * overlap. In that shared strip, the outer overlap / 2 pixels
   * of each tile get weight 0, and the middle `overlap` pixels crossfade with a raised cosine.
   * A model whose receptive field radius is at most overlap / 2 input pixels therefore gives
   * the same result as on the whole image, up to float rounding. Must be less than tileSize / 2 so that tiles advance.
   */
  overlap: number;
  /** Output pixels per input pixel along each axis (1 by default, 2 or 4 for upscaling). */
  scale?: number;
  /** Tile width and height must be multiples of this, e.g. 4 for a model that downsamples twice (1 by default). */
  multipleOf?: number;
  /** Channels per output pixel (the input channel count by default). */
  outChannels?: number;
  /** Receives statistics after the last tile. */
  onStats?: (stats: TiledStats) => void;
}

/** Placement of the tiles along one axis, in input pixels. */
interface AxisLayout {
  /** Length of every tile along this axis, a multiple of multipleOf. */
  tileLength: number;
  /** Start of each tile, ascending. The last tile ends at the image edge unless tileLength exceeds the image. */
  starts: number[];
}

/**
 * Receives finished output rows in order, top to bottom: `rows` contains `rowCount` rows of
 * outWidth * outChannels bytes starting at output row `firstRow`. runTiled waits for each
 * call, and the buffer is reused afterwards, so a sink that keeps the bytes must copy them.
 */
export type RowSink = (rows: Uint8Array, firstRow: number, rowCount: number) => void | Promise<void>;

/** Most output rows handed to a RowSink in one call, so that a wide output needs no large staging buffer. */
const SINK_ROWS = 64;

/**
 * Runs `infer` on overlapping tiles of `input` and blends the results into one HWC image of
 * (height * scale) x (width * scale) x outChannels bytes. Output values in [0, 1] map to
 * 0..255 with rounding, values outside are clamped and NaN becomes 0.
 *
 * Every tile lies inside the image because the last tile of a row or column is shifted back
 * to end at the image edge. The starts are spread evenly, and neighbours can overlap by more
 * than 2 * overlap. Only an image dimension smaller than
 * tileSize needs padding. That tile dimension is rounded up to a multiple of multipleOf and
 * filled by mirroring the image at its edge. At the image border, tiles therefore see the
 * same border as a whole-image run.
 *
 * `infer` is awaited for each tile in turn, row by row.
 */
export async function runTiled(input: TiledInput, infer: TileInference, options: TiledOptions): Promise<Uint8Array> {
  const scale = options.scale ?? 1;
  const rowBytes = input.width * scale * (options.outChannels ?? input.channels);
  const output = new Uint8Array(input.height * scale * rowBytes);
  await runTiledInto(input, infer, options, rowsInto(output, rowBytes));
  return output;
}

/** Returns a RowSink that copies the rows it receives into `output`, whose rows are `rowBytes` long. */
export function rowsInto(output: Uint8Array, rowBytes: number): RowSink {
  return (rows, firstRow, rowCount) => {
    output.set(rows.subarray(0, rowCount * rowBytes), firstRow * rowBytes);
  };
}

/**
 * Like runTiled, but hands the output to `sink` as rows are finished instead of returning it,
 * so that an output larger than memory can be streamed to a file. At most one tile row of
 * output, in float accumulators, is held at a time.
 */
export async function runTiledInto(input: TiledInput, infer: TileInference, options: TiledOptions, sink: RowSink): Promise<void> {
  const { width, height, channels } = input;
  const { tileSize, overlap } = options;
  const scale = options.scale ?? 1;
  const multipleOf = options.multipleOf ?? 1;
  const outChannels = options.outChannels ?? channels;
  validateTiledArguments(input, { tileSize, overlap, scale, multipleOf, outChannels });

  const rows = layoutAxis(height, tileSize, overlap, multipleOf);
  const columns = layoutAxis(width, tileSize, overlap, multipleOf);
  const outWidth = width * scale;
  const outHeight = height * scale;

  // The weights are separable and the tiles form a grid, so the weight sum at (y, x) is the
  // row sum at y times the column sum at x. Normalising each tile's weights by those sums up
  // front leaves only the colour sums to accumulate, a quarter less memory than also summing
  // weights per pixel.
  const rowWeights = normalisedWeights(rows, overlap, scale, outHeight, 'row');
  const columnWeights = normalisedWeights(columns, overlap, scale, outWidth, 'column');
  const band = new AccumulatorBand(Math.min(rows.tileLength * scale, outHeight), outWidth, outHeight, outChannels);
  const staging = new Uint8Array(Math.min(SINK_ROWS, outHeight) * outWidth * outChannels);
  let nextRowToFinalise = 0;
  let maxBandRows = 0;
  let tileCount = 0;

  for (let rowIndex = 0; rowIndex < rows.starts.length; rowIndex++) {
    const y0 = rows.starts[rowIndex];

    // Rows above this tile row were finalised after the previous tile row, so the band
    // spans at most one tile height.
    const bandEnd = Math.min((y0 + rows.tileLength) * scale, outHeight);
    maxBandRows = Math.max(maxBandRows, bandEnd - nextRowToFinalise);

    for (let columnIndex = 0; columnIndex < columns.starts.length; columnIndex++) {
      const x0 = columns.starts[columnIndex];
      const tile = extractTile(input, y0, x0, rows.tileLength, columns.tileLength);
      const result = await infer(tile, rows.tileLength, columns.tileLength, channels);
      checkInferResult(result, rows.tileLength, columns.tileLength, scale, outChannels, x0, y0);

      band.accumulate(result, y0 * scale, x0 * scale, rows.tileLength * scale, columns.tileLength * scale, rowWeights[rowIndex], columnWeights[columnIndex]);
      tileCount++;
    }

    // No later tile reaches above the next tile row's first output row.
    const finalEnd = rowIndex + 1 < rows.starts.length ? rows.starts[rowIndex + 1] * scale : outHeight;
    while (nextRowToFinalise < finalEnd) {
      const count = Math.min(SINK_ROWS, finalEnd - nextRowToFinalise);
      for (let row = 0; row < count; row++) band.finaliseRow(nextRowToFinalise + row, staging, row);
      await sink(staging, nextRowToFinalise, count);
      nextRowToFinalise += count;
    }
  }

  options.onStats?.({
    tileWidth: columns.tileLength,
    tileHeight: rows.tileLength,
    tileCount,
    maxBandRows,
    bandBytes: band.bytes,
  });
}

/**
 * Blend weights of every tile along one axis, divided by their sum over all tiles at each
 * output position, so that the weights of the tiles covering a position add up to 1.
 */
function normalisedWeights(layout: AxisLayout, overlap: number, scale: number, outLength: number, axis: 'row' | 'column'): Float32Array[] {
  const weights = layout.starts.map((_, index) => windowWeights(layout, index, overlap, scale));
  const sums = new Float64Array(outLength);
  for (const [index, start] of layout.starts.entries()) {
    const end = Math.min(weights[index].length, outLength - start * scale);
    for (let position = 0; position < end; position++) sums[start * scale + position] += weights[index][position];
  }

  const uncovered = sums.findIndex((sum) => !(sum > 0));
  if (uncovered >= 0) throw new Error(`Internal error: runTiled left output ${axis} ${uncovered} without tile weight.`);

  return weights.map((tileWeights, index) => {
    const offset = layout.starts[index] * scale;
    return tileWeights.map((weight, position) => (offset + position < outLength ? weight / sums[offset + position] : 0));
  });
}

interface ResolvedTiledOptions {
  tileSize: number;
  overlap: number;
  scale: number;
  multipleOf: number;
  outChannels: number;
}

function validateTiledArguments(input: TiledInput, options: ResolvedTiledOptions): void {
  const { tileSize, overlap, scale, multipleOf, outChannels } = options;

  if (!isPositiveInteger(multipleOf)) throw invalidOption('a positive integer', 'multipleOf', multipleOf);
  if (!isPositiveInteger(tileSize)) throw invalidOption('a positive integer', 'tileSize', tileSize);
  if (tileSize % multipleOf !== 0) throw invalidOption(`a multiple of ${multipleOf}`, 'tileSize', tileSize);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap * 2 >= tileSize) {
    throw invalidOption(`an integer from 0 to less than half of tileSize (${tileSize})`, 'overlap', overlap);
  }
  if (!isPositiveInteger(scale)) throw invalidOption('a positive integer', 'scale', scale);
  if (!isPositiveInteger(outChannels)) throw invalidOption('a positive integer', 'outChannels', outChannels);

  const { width, height, channels, data } = input;
  if (!isPositiveInteger(width)) throw invalidOption('a positive integer', 'input.width', width);
  if (!isPositiveInteger(height)) throw invalidOption('a positive integer', 'input.height', height);
  if (!isPositiveInteger(channels)) throw invalidOption('a positive integer', 'input.channels', channels);
  const expectedLength = width * height * channels;
  if (data.length !== expectedLength) {
    throw invalidOption(`${expectedLength} bytes (width * height * channels)`, 'input.data.length', data.length);
  }
}

function isPositiveInteger(value: number): boolean {
  return Number.isInteger(value) && value > 0;
}

/**
 * Places tiles along an axis of `length` input pixels. Neighbouring tiles overlap by at least
 * 2 * overlap, and the starts are spread evenly so that any extra overlap is shared.
 */
function layoutAxis(length: number, tileSize: number, overlap: number, multipleOf: number): AxisLayout {
  if (length <= tileSize) {
    return { tileLength: Math.ceil(length / multipleOf) * multipleOf, starts: [0] };
  }

  // The minimum number of tiles that covers the axis with strides of at most tileSize - 2 * overlap.
  const count = Math.ceil((length - 2 * overlap) / (tileSize - 2 * overlap));

  // Those tiles are then shrunk to the smallest length that still covers the axis with the same
  // overlap, so an axis slightly longer than one tile costs two half tiles, not two full ones.
  // count * tileLength - (count - 1) * 2 * overlap >= length keeps every stride within
  // tileLength - 2 * overlap.
  const balanced = Math.ceil((length + (count - 1) * 2 * overlap) / count / multipleOf) * multipleOf;
  const tileLength = Math.min(tileSize, balanced);

  const span = length - tileLength;
  const starts: number[] = [];
  for (let index = 0; index < count; index++) {
    starts.push(Math.round((index * span) / (count - 1)));
  }
  return { tileLength, starts };
}

/**
 * Blend weights along one axis for tile `index`, one per output pixel of the tile.
 * Sides that face a neighbouring tile ramp from 0 to 1 (see rampWeight). Sides at
 * the image border keep weight 1 up to the edge, because no other tile covers those pixels.
 */
function windowWeights(layout: AxisLayout, index: number, overlap: number, scale: number): Float32Array {
  const length = layout.tileLength * scale;
  const weights = new Float32Array(length);
  const hasPrevious = index > 0;
  const hasNext = index < layout.starts.length - 1;

  for (let position = 0; position < length; position++) {
    // Distances from the tile's sides in input pixels, measured at the output pixel centre.
    const fromStart = (position + 0.5) / scale;
    const fromEnd = (length - position - 0.5) / scale;
    let weight = 1;
    if (hasPrevious) weight *= rampWeight(fromStart, overlap);
    if (hasNext) weight *= rampWeight(fromEnd, overlap);
    weights[position] = weight;
  }
  return weights;
}

/**
 * Weight at `distance` input pixels from a tile side that faces a neighbour. The outer
 * overlap / 2 pixels get weight 0 because the model saw padding instead of image content
 * near the tile edge. Over the next `overlap` pixels the weight rises as a raised cosine,
 * which makes the weights of two tiles that overlap by exactly 2 * overlap sum to 1.
 * Tiles shorter than 3 * overlap never reach weight 1 in the middle, which the
 * normalisation by the weight sum absorbs.
 */
function rampWeight(distance: number, overlap: number): number {
  if (overlap === 0) return 1;

  const margin = overlap / 2;
  if (distance <= margin) return 0;
  if (distance >= margin + overlap) return 1;

  const progress = (distance - margin) / overlap;
  return Math.sin((Math.PI / 2) * progress) ** 2;
}

/** Maps a coordinate outside [0, length) back inside by mirroring at the edges without repeating the edge pixel. */
function mirrorIndex(index: number, length: number): number {
  if (length === 1) return 0;

  const period = 2 * (length - 1);
  const folded = ((index % period) + period) % period;
  return folded < length ? folded : period - folded;
}

function extractTile(input: TiledInput, y0: number, x0: number, tileHeight: number, tileWidth: number): Float32Array {
  const { width, height, channels, data } = input;
  const tile = new Float32Array(tileHeight * tileWidth * channels);

  for (let ty = 0; ty < tileHeight; ty++) {
    const sourceY = mirrorIndex(y0 + ty, height);
    for (let tx = 0; tx < tileWidth; tx++) {
      const sourceX = mirrorIndex(x0 + tx, width);
      const from = (sourceY * width + sourceX) * channels;
      const to = (ty * tileWidth + tx) * channels;
      for (let c = 0; c < channels; c++) {
        tile[to + c] = data[from + c] / 255;
      }
    }
  }
  return tile;
}

function checkInferResult(
  result: Float32Array,
  tileHeight: number,
  tileWidth: number,
  scale: number,
  outChannels: number,
  x0: number,
  y0: number,
): void {
  const outHeight = tileHeight * scale;
  const outWidth = tileWidth * scale;
  const expected = outHeight * outWidth * outChannels;
  if (result.length === expected) return;

  throw new DarkroomError(
    'INVALID_PIPELINE',
    `The model returned ${result.length} values for the ${tileWidth}x${tileHeight} tile at x=${x0}, y=${y0}, ` +
      `but scale ${scale} and ${outChannels} output channels require ${expected} (${outWidth}x${outHeight}x${outChannels}). ` +
      'Check scale and outChannels against the model.',
  );
}

/**
 * Float accumulators for a band of output rows, stored as a ring indexed by row mod capacity.
 * The tile weights arrive normalised, so each accumulator ends up holding the blended value.
 *
 * Memory bound: capacity is at most tileSize * scale rows, so the band takes
 * tileSize * scale * outWidth * outChannels * 4 bytes. For a 6000x4000 photo with 256-pixel
 * tiles, scale 1 and 3 channels that is about 18 MB, against 288 MB for full-image
 * accumulators. The caller finalises each row to bytes as soon as no later tile reaches it,
 * before any tile beyond the capacity arrives.
 */
class AccumulatorBand {
  private readonly sums: Float32Array;

  constructor(
    private readonly capacity: number,
    private readonly width: number,
    private readonly height: number,
    private readonly channels: number,
  ) {
    this.sums = new Float32Array(capacity * width * channels);
  }

  get bytes(): number {
    return this.sums.byteLength;
  }

  /** Adds a tile result whose top-left output pixel is (outY0, outX0). Pixels past the image edge are skipped. */
  accumulate(
    result: Float32Array,
    outY0: number,
    outX0: number,
    resultHeight: number,
    resultWidth: number,
    rowWeights: Float32Array,
    columnWeights: Float32Array,
  ): void {
    const { width, channels } = this;
    const rowsInside = Math.min(resultHeight, this.height - outY0);
    const columnsInside = Math.min(resultWidth, width - outX0);

    for (let ty = 0; ty < rowsInside; ty++) {
      const rowWeight = rowWeights[ty];
      if (rowWeight === 0) continue;

      const slot = (outY0 + ty) % this.capacity;
      for (let tx = 0; tx < columnsInside; tx++) {
        const weight = rowWeight * columnWeights[tx];
        if (weight === 0) continue;

        const from = (ty * resultWidth + tx) * channels;
        const to = (slot * width + outX0 + tx) * channels;
        for (let c = 0; c < channels; c++) {
          this.sums[to + c] += weight * result[from + c];
        }
      }
    }
  }

  /** Writes row `y` as bytes into row `targetRow` of `target` and clears its slot for reuse. */
  finaliseRow(y: number, target: Uint8Array, targetRow: number): void {
    const rowLength = this.width * this.channels;
    const from = (y % this.capacity) * rowLength;
    const to = targetRow * rowLength;

    for (let i = 0; i < rowLength; i++) {
      target[to + i] = toByte(this.sums[from + i]);
      this.sums[from + i] = 0;
    }
  }
}

function toByte(value: number): number {
  const scaled = Math.round(value * 255);
  if (!(scaled > 0)) return 0;
  return scaled > 255 ? 255 : scaled;
}
