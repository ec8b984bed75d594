import * as tf from '@tensorflow/tfjs-core';

import { DarkroomError } from '../errors.js';
import type { Logger } from '../log.js';
import { croppingRowSink, padReflect } from '../media/border.js';
import { meanChroma } from '../media/lab.js';
import { type RowSink, rowsInto, runTiledInto } from '../media/tiling.js';
import { colorizeImage } from './colorize.js';
import { denoiseBatch } from './denoise.js';
import type { LoadedModel } from './storage.js';
import { upscaleBatch } from './upscale.js';

/**
 * Mirrored border added around a photo before denoising, in pixels. Without it the outermost
 * rows and columns had about twice the error of the interior, because 'same' convolutions pad
 * with zeros there.
 */
const DENOISE_BORDER = 16;

/** An 8-bit RGB image, HWC. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

/** Options of any step, as the step definitions in src/pipeline/steps.ts resolve them. */
export interface StepOptions {
  readonly tileSize?: number;
  readonly overlap?: number;
  readonly workingSize?: number;
}

export interface ApplyContext {
  /** Receives notes about the input, e.g. that a colour photo was colorized from its lightness. */
  readonly log?: Logger;
  /** Name of the input for those notes, usually its path. */
  readonly source?: string;
}

/**
 * Mean Lab chroma above which a colorize input counts as a colour photo, so that compression
 * tints in a grey photo saved in colour do not count.
 * NOTE: 3 is an estimate, not measured on a set of scanned grey photos or faded colour prints.
 */
const COLOUR_INPUT_CHROMA = 3;

/**
 * Applies one pipeline step to an image in memory. Steps chain by feeding one step's RgbImage to
 * the next, without encoding in between; the upscale steps return a larger image.
 */
export async function applyStep(step: string, loaded: LoadedModel, image: RgbImage, options: StepOptions, context: ApplyContext = {}): Promise<RgbImage> {
  checkModelTask(step, loaded);
  if (step === 'colorize') return colorize(loaded, image, options, context);

  const tiled = tiledStep(step);
  const scale = tiled.scale;
  const rgb = new Uint8Array(image.width * scale * image.height * scale * 3);
  await runTiledModel(loaded, image, options, tiled, rowsInto(rgb, image.width * scale * 3));
  return { width: image.width * scale, height: image.height * scale, rgb };
}

function checkModelTask(step: string, loaded: LoadedModel): void {
  if (loaded.metadata.task !== step) {
    throw new DarkroomError('MODEL_NOT_FOUND', `The model in ${loaded.dir} was trained for "${loaded.metadata.task}", not for the "${step}" step`);
  }
}

/** A step that runs its model over the photo in tiles, and how. */
interface TiledStep {
  readonly scale: number;
  /** Mirrored border added around the photo first and cropped from the result, in input pixels. */
  readonly border: number;
  readonly predict: (model: LoadedModel['model'], input: tf.Tensor4D) => tf.Tensor4D;
}

const TILED_STEPS: ReadonlyMap<string, TiledStep> = new Map([
  ['denoise', { scale: 1, border: DENOISE_BORDER, predict: denoiseBatch }],
  // The upscale steps get no mirror padding, because it lowered PSNR in the outermost output
  // pixels by 1 to 3 dB. That was measured on samples/photos at 512 px with x2 and x4 models
  // of the default architecture, trained on those photos for 1200 steps.
  ['upscale-x2', { scale: 2, border: 0, predict: upscaleBatch }],
  ['upscale-x4', { scale: 4, border: 0, predict: upscaleBatch }],
]);

function tiledStep(step: string): TiledStep {
  const tiled = TILED_STEPS.get(step);
  if (tiled === undefined) throw new DarkroomError('INVALID_PIPELINE', `No runner for the step "${step}"`);
  return tiled;
}

/** Output pixels per input pixel along each axis of a step that can hand over its output row by row, or undefined for one that cannot. */
export function streamedStepScale(step: string): number | undefined {
  return TILED_STEPS.get(step)?.scale;
}

/**
 * Applies a tiled step (see streamedStepScale) and hands its output to `sink` row by row, top
 * to bottom, instead of returning it, so that the output never needs to fit in memory.
 */
export async function applyStepInto(step: string, loaded: LoadedModel, image: RgbImage, options: StepOptions, sink: RowSink): Promise<void> {
  checkModelTask(step, loaded);
  await runTiledModel(loaded, image, options, tiledStep(step), sink);
}

/**
 * Runs a model over an image in tiles and hands the output rows to `sink`. With a border, the
 * image is first mirror-padded by that many pixels on every side, and `border * scale` rows and
 * columns are cropped from every side of the result before the sink receives them.
 */
async function runTiledModel(loaded: LoadedModel, image: RgbImage, options: StepOptions, step: TiledStep, sink: RowSink): Promise<void> {
  if (options.tileSize === undefined || options.overlap === undefined) {
    throw new DarkroomError('INVALID_PIPELINE', 'A tiled step needs tileSize and overlap options');
  }
  const { scale, border, predict } = step;
  const paddedWidth = image.width + 2 * border;
  const paddedHeight = image.height + 2 * border;
  const padded = border > 0 ? padReflect(image.rgb, image.width, image.height, 3, border) : image.rgb;

  await runTiledInto(
    { width: paddedWidth, height: paddedHeight, channels: 3, data: padded },
    async (tile, tileHeight, tileWidth) => {
      const input = tf.tensor4d(tile, [1, tileHeight, tileWidth, 3]);
      const output = predict(loaded.model, input);
      const values = (await output.data()) as Float32Array;
      tf.dispose([input, output]);
      return values;
    },
    { tileSize: options.tileSize, overlap: options.overlap, multipleOf: loaded.metadata.sizeMultiple, scale },
    border > 0 ? croppingRowSink(sink, paddedWidth * scale, image.width * scale, image.height * scale, border * scale) : sink,
  );
}

async function colorize(loaded: LoadedModel, image: RgbImage, options: StepOptions, context: ApplyContext): Promise<RgbImage> {
  const chroma = meanChroma(image.rgb);
  if (chroma > COLOUR_INPUT_CHROMA) {
    context.log?.info(`${context.source ?? 'input'} is a colour photo (mean chroma ${chroma.toFixed(1)}); colorizing its luminance (Lab lightness L) only`);
  }
  const rgb = await colorizeImage(loaded.model, image, {
    workingSize: options.workingSize ?? loaded.metadata.training.workingSize ?? 256,
    sizeMultiple: loaded.metadata.sizeMultiple,
    chromaBoost: loaded.metadata.inference?.chromaBoost ?? 1,
    temperature: loaded.metadata.inference?.temperature ?? 1,
  });
  return { width: image.width, height: image.height, rgb };
}
