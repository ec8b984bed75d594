import type { Logger } from '../log.js';
import { greyWithSameLightness } from '../media/lab.js';
import { applyStep, type StepOptions } from '../models/apply.js';
import type { LoadedModel } from '../models/storage.js';
import { ProgressBar } from '../progress.js';
import { listPhotos, loadPhotos } from '../train/photos.js';
import type { PhotoSplit } from './denoise.js';
import { colourfulness, psnr } from './metrics.js';
import { countOf } from '../text.js';
import { heldOutRows, mean, photoSplit, renderTable, signed } from './table.js';

export interface ColorizeEvalRow {
  readonly photo: string;
  readonly split: PhotoSplit;
  readonly width: number;
  readonly height: number;
  /** PSNR in dB of the grey photo (the original's Lab lightness with a = b = 0). */
  readonly grey: number;
  readonly model: number;
  /** Colourfulness of Hasler and Süsstrunk (2003) of the original and of the model's result. */
  readonly originalColourfulness: number;
  readonly modelColourfulness: number;
}

export interface ColorizeEvalOptions {
  readonly data: string;
  readonly maxSide: number;
  readonly step: StepOptions;
}

/**
 * Turns each colour photo grey by keeping its Lab lightness, colorizes the grey photo, and
 * measures PSNR of the grey photo and of the result against the original, and the
 * colourfulness of the original and of the result.
 */
export async function evaluateColorizer(loaded: LoadedModel, options: ColorizeEvalOptions, log: Logger): Promise<ColorizeEvalRow[]> {
  const photos = await loadPhotos(await listPhotos(options.data), options.maxSide, log);
  const progress = new ProgressBar({ label: 'eval colorize', total: photos.length, unit: 'photo' });
  const rows: ColorizeEvalRow[] = [];

  for (const photo of photos) {
    const grey = greyWithSameLightness(photo.rgb);
    const colorized = await applyStep('colorize', loaded, { width: photo.width, height: photo.height, rgb: grey }, options.step);
    rows.push({
      photo: photo.name,
      split: photoSplit(loaded, photo.name),
      width: photo.width,
      height: photo.height,
      grey: psnr(photo.rgb, grey),
      model: psnr(photo.rgb, colorized.rgb),
      originalColourfulness: colourfulness(photo.rgb),
      modelColourfulness: colourfulness(colorized.rgb),
    });
    progress.update(rows.length);
  }
  progress.finish();
  return rows;
}

/** Renders the rows and the means as a text table; "ratio" is the result's colourfulness over the original's. */
export function formatColorizeTable(rows: readonly ColorizeEvalRow[]): string {
  const header = ['photo', 'split', 'size', 'grey PSNR', 'model PSNR', 'gain', 'original M', 'model M', 'ratio'];
  const body = rows.map((row) => [
    row.photo,
    row.split,
    `${row.width}x${row.height}`,
    row.grey.toFixed(2),
    row.model.toFixed(2),
    signed(row.model - row.grey),
    row.originalColourfulness.toFixed(1),
    row.modelColourfulness.toFixed(1),
    formatRatio(row.modelColourfulness, row.originalColourfulness),
  ]);
  const meanRow = (label: string, subset: readonly ColorizeEvalRow[]): string[] => {
    const grey = mean(subset.map((row) => row.grey));
    const model = mean(subset.map((row) => row.model));
    const original = mean(subset.map((row) => row.originalColourfulness));
    const result = mean(subset.map((row) => row.modelColourfulness));
    return [label, countOf(subset.length, 'photo'), '', grey.toFixed(2), model.toFixed(2), signed(model - grey), original.toFixed(1), result.toFixed(1), formatRatio(result, original)];
  };
  const footer = [meanRow('mean', rows)];
  const notTrained = heldOutRows(rows);
  if (notTrained.length > 0 && notTrained.length < rows.length) footer.push(meanRow('mean, not trained or calibrated on', notTrained));

  return renderTable(
    'PSNR in dB against the colour original; M is the colourfulness of Hasler and Süsstrunk (2003); gain is model minus grey; ratio is model M over original M',
    header,
    body,
    footer,
  );
}

function formatRatio(result: number, original: number): string {
  return original > 0 ? `${Math.round((100 * result) / original)}%` : '-';
}
