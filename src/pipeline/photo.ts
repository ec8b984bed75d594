/**
 * A photo pipeline's job on one decoded photo: its steps in memory, one after another, then
 * the output file. A last step whose output would be large streams its rows to the file
 * instead, so that, for example, a 24-megapixel photo enlarged four times (1.1 GB of RGB)
 * never sits in memory whole.
 */
import path from 'node:path';

import type { Logger } from '../log.js';
import { checkWritableFolder } from '../media/atomic.js';
import { type DecodedImage, encodeImage, encodeStreamedImage } from '../media/image.js';
import { applyStep, applyStepInto, type RgbImage, type StepOptions, streamedStepScale } from '../models/apply.js';
import type { LoadedModel } from '../models/storage.js';

/**
 * Output size in RGB bytes above which the last step streams its rows to the output file.
 * Below it the in-memory path is kept, which skips writing and reading a temporary PNG. A
 * 24-megapixel photo's denoise output (69 MiB) stays in memory, while its 2x and 4x
 * enlargements (275 and 1099 MiB) stream.
 */
export const STREAM_OUTPUT_BYTES = 256 * 2 ** 20;

export interface PhotoStep {
  readonly step: string;
  readonly model: string;
  readonly options: Readonly<Record<string, unknown>>;
}

export interface PhotoJobOptions {
  readonly modelFor: (dir: string) => Promise<LoadedModel>;
  readonly log?: Logger;
  /** Output bytes above which the last step streams (STREAM_OUTPUT_BYTES by default). */
  readonly streamOutputBytes?: number;
}

/** Runs `steps` on `decoded`, writes the result to `outputPath` in the input's format and returns the output size. */
export async function runPhotoSteps(decoded: DecodedImage, source: string, steps: readonly PhotoStep[], outputPath: string, options: PhotoJobOptions): Promise<{ width: number; height: number }> {
  await checkWritableFolder(path.dirname(outputPath));

  const context = { log: options.log, source };
  let image: RgbImage = { width: decoded.width, height: decoded.height, rgb: decoded.rgb };

  const last = steps.at(-1);
  const lastScale = last === undefined ? undefined : streamedStepScale(last.step);
  const lastOutputBytes = lastScale === undefined ? 0 : image.width * lastScale * image.height * lastScale * 3;
  const streams = last !== undefined && lastScale !== undefined && lastOutputBytes > (options.streamOutputBytes ?? STREAM_OUTPUT_BYTES);
  const inMemory = streams ? steps.slice(0, -1) : steps;

  for (const step of inMemory) {
    image = await applyStep(step.step, await options.modelFor(step.model), image, step.options as StepOptions, context);
  }

  // A grey input would be written back as grey, which would drop what colorize added.
  const channels = steps.some((step) => step.step === 'colorize') ? 3 : decoded.channels;
  if (!streams) {
    // encodeImage resizes the alpha plane from sourceWidth x sourceHeight when a step upscaled.
    await encodeImage({ ...decoded, channels, width: image.width, height: image.height, rgb: image.rgb }, outputPath);
    return { width: image.width, height: image.height };
  }

  const loaded = await options.modelFor(last.model);
  const input = image;
  const width = input.width * lastScale;
  const height = input.height * lastScale;
  options.log?.debug(`${source}: the ${width}x${height} output of ${last.step} goes to ${outputPath} row by row`);
  await encodeStreamedImage({ ...decoded, channels, width, height }, outputPath, (sink) => applyStepInto(last.step, loaded, input, last.options as StepOptions, sink));
  return { width, height };
}
