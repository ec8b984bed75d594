import type { Logger } from '../log.js';
import { upscaleBicubic } from '../media/resample.js';
import { applyStep, type StepOptions } from '../models/apply.js';
import type { LoadedModel } from '../models/storage.js';
import { type UpscaleScale, upscaleTask } from '../models/upscale.js';
import { ProgressBar } from '../progress.js';
import { listPhotos, loadPhotos } from '../train/photos.js';
import { makePair } from '../train/upscale.js';
import type { PhotoSplit } from './denoise.js';
import { psnrLuminance } from './metrics.js';
import { countOf } from '../text.js';
import { heldOutRows, mean, photoSplit, renderTable, signed } from './table.js';

export interface UpscaleEvalRow {
  readonly photo: string;
  readonly split: PhotoSplit;
  /** Size of the original photo (after --max-side and cropping to a multiple of the scale). */
  readonly width: number;
  readonly height: number;
  readonly bicubic: number;
  readonly model: number;
}

export interface UpscaleEvalOptions {
  readonly data: string;
  readonly scale: UpscaleScale;
  readonly maxSide: number;
  readonly tiles: StepOptions;
}

/**
 * Shrinks each photo by `scale` with sharp's bicubic kernel, enlarges it back with bicubic
 * interpolation (upscaleBicubic) and with the model, and measures luminance PSNR of both against the original,
 * leaving out a border of `scale` pixels.
 */
export async function evaluateUpscaler(loaded: LoadedModel, options: UpscaleEvalOptions, log: Logger): Promise<UpscaleEvalRow[]> {
  const photos = await loadPhotos(await listPhotos(options.data), options.maxSide, log);
  const step = upscaleTask(options.scale);
  const progress = new ProgressBar({ label: `eval ${step}`, total: photos.length, unit: 'photo' });
  const rows: UpscaleEvalRow[] = [];

  for (const photo of photos) {
    const { high, low, scale } = await makePair(photo, options.scale);
    const bicubic = upscaleBicubic(low, high.width, high.height);
    const upscaled = await applyStep(step, loaded, low, options.tiles);
    rows.push({
      photo: photo.name,
      split: photoSplit(loaded, photo.name),
      width: high.width,
      height: high.height,
      bicubic: psnrLuminance(high.rgb, bicubic, high.width, high.height, scale),
      model: psnrLuminance(high.rgb, upscaled.rgb, high.width, high.height, scale),
    });
    progress.update(rows.length);
  }
  progress.finish();
  return rows;
}

/** Renders the rows and the means (all photos, and photos the model never trained on) as a text table. */
export function formatUpscaleTable(rows: readonly UpscaleEvalRow[], scale: number): string {
  const header = ['photo', 'split', 'size', 'bicubic', 'model', 'gain'];
  const body = rows.map((row) => [row.photo, row.split, `${row.width}x${row.height}`, row.bicubic.toFixed(2), row.model.toFixed(2), signed(row.model - row.bicubic)]);
  const meanRow = (label: string, subset: readonly UpscaleEvalRow[]): string[] => {
    const bicubic = mean(subset.map((row) => row.bicubic));
    const model = mean(subset.map((row) => row.model));
    return [label, countOf(subset.length, 'photo'), '', bicubic.toFixed(2), model.toFixed(2), signed(model - bicubic)];
  };
  const footer = [meanRow('mean', rows)];
  const notTrained = heldOutRows(rows);
  if (notTrained.length > 0 && notTrained.length < rows.length) footer.push(meanRow('mean, not trained on', notTrained));

  return renderTable(
    `PSNR in dB on luminance (Y of YCbCr, BT.601) at x${scale}, border of ${scale} px left out; photos shrunk with sharp's bicubic kernel; gain is model minus bicubic interpolation`,
    header,
    body,
    footer,
  );
}
