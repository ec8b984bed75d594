import { createHash } from 'node:crypto';

import type { Logger } from '../log.js';
import { applyStep } from '../models/apply.js';
import type { LoadedModel } from '../models/storage.js';
import type { TileOptions } from '../pipeline/steps.js';
import { ProgressBar } from '../progress.js';
import { addGaussianNoise } from '../train/noise.js';
import { listPhotos, loadPhotos } from '../train/photos.js';
import { bestGaussianBlur, bestMedian } from './baselines.js';
import { psnr } from './metrics.js';
import { countOf } from '../text.js';
import { heldOutRows, mean, photoSplit, renderTable, signed } from './table.js';

/**
 * Role of a photo in the model's training data. Calibration photos stayed out of the batches
 * but tuned an inference setting, so they count as seen.
 */
export type PhotoSplit = 'train' | 'calibration' | 'validation' | 'unseen';

export interface DenoiseEvalRow {
  readonly photo: string;
  readonly split: PhotoSplit;
  readonly width: number;
  readonly height: number;
  readonly noisy: number;
  readonly gaussian: number;
  readonly gaussianSetting: string;
  readonly median: number;
  readonly medianSetting: string;
  readonly model: number;
}

export interface DenoiseEvalOptions {
  readonly data: string;
  readonly sigma: number;
  readonly seed: number;
  readonly maxSide: number;
  readonly tiles: TileOptions;
}

/** Derives a photo's noise seed from its name only, so adding photos to a folder changes no other row. */
function photoSeed(name: string, seed: number): number {
  return createHash('sha1').update(`${seed}:${name}`).digest().readUInt32LE(0);
}

/**
 * Adds Gaussian noise of `sigma` (0-255 scale, fixed seed) to each photo, then measures PSNR of
 * the noisy photo, of the best Gaussian and median blur, and of the model.
 */
export async function evaluateDenoiser(loaded: LoadedModel, options: DenoiseEvalOptions, log: Logger): Promise<DenoiseEvalRow[]> {
  const files = await listPhotos(options.data);
  const photos = await loadPhotos(files, options.maxSide, log);
  const progress = new ProgressBar({ label: 'eval denoise', total: photos.length, unit: 'photo' });
  const rows: DenoiseEvalRow[] = [];

  for (const photo of photos) {
    const noisy = addGaussianNoise(photo.rgb, options.sigma, photoSeed(photo.name, options.seed));
    const gaussian = await bestGaussianBlur(photo.rgb, noisy, photo.width, photo.height);
    const median = await bestMedian(photo.rgb, noisy, photo.width, photo.height);
    const denoised = await applyStep('denoise', loaded, { width: photo.width, height: photo.height, rgb: noisy }, options.tiles);

    rows.push({
      photo: photo.name,
      split: photoSplit(loaded, photo.name),
      width: photo.width,
      height: photo.height,
      noisy: psnr(photo.rgb, noisy),
      gaussian: gaussian.psnr,
      gaussianSetting: gaussian.setting,
      median: median.psnr,
      medianSetting: median.setting,
      model: psnr(photo.rgb, denoised.rgb),
    });
    progress.update(rows.length);
  }
  progress.finish();
  return rows;
}

/** Renders the rows and the means (all photos, and photos the model never trained on) as a text table. */
export function formatDenoiseTable(rows: readonly DenoiseEvalRow[], sigma: number): string {
  const header = ['photo', 'split', 'size', 'noisy', 'gaussian', 'median', 'model', 'gain'];
  const body = rows.map((row) => [
    row.photo,
    row.split,
    `${row.width}x${row.height}`,
    row.noisy.toFixed(2),
    `${row.gaussian.toFixed(2)} (${row.gaussianSetting})`,
    `${row.median.toFixed(2)} (${row.medianSetting})`,
    row.model.toFixed(2),
    signed(row.model - row.noisy),
  ]);

  const meanRow = (label: string, subset: readonly DenoiseEvalRow[]): string[] => {
    const average = (pick: (row: DenoiseEvalRow) => number): number => mean(subset.map(pick));
    return [
      label,
      countOf(subset.length, 'photo'),
      '',
      average((row) => row.noisy).toFixed(2),
      average((row) => row.gaussian).toFixed(2),
      average((row) => row.median).toFixed(2),
      average((row) => row.model).toFixed(2),
      signed(average((row) => row.model) - average((row) => row.noisy)),
    ];
  };
  const footer = [meanRow('mean', rows)];
  const notTrained = heldOutRows(rows);
  if (notTrained.length > 0 && notTrained.length < rows.length) footer.push(meanRow('mean, not trained on', notTrained));

  return renderTable(`PSNR in dB at noise sigma ${sigma} (0-255 scale); gain is model minus noisy`, header, body, footer);
}
