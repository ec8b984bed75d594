import type { LoadedModel } from '../models/storage.js';
import { displayWidth, padEndColumns, padStartColumns } from '../text.js';
import type { PhotoSplit } from './denoise.js';

/** Returns whether the model trained on a photo, calibrated on it, validated on it, or never saw it. */
export function photoSplit(loaded: LoadedModel, name: string): PhotoSplit {
  if (loaded.metadata.training.files.train.includes(name)) return 'train';
  if (loaded.metadata.training.files.calibration?.includes(name) === true) return 'calibration';
  if (loaded.metadata.training.files.validation.includes(name)) return 'validation';
  return 'unseen';
}

/** Rows of photos that neither trained the model nor calibrated it: the fair test of it. */
export function heldOutRows<R extends { readonly split: PhotoSplit }>(rows: readonly R[]): R[] {
  return rows.filter((row) => row.split === 'validation' || row.split === 'unseen');
}

export function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/**
 * Renders a text table: the first two columns left-aligned (photo and split), the rest
 * right-aligned, with rules above the body and above the footer.
 */
export function renderTable(title: string, header: readonly string[], body: readonly string[][], footer: readonly string[][]): string {
  const table = [header, ...body, ...footer];
  const widths = header.map((_, column) => Math.max(...table.map((cells) => displayWidth(cells[column]))));
  const render = (cells: readonly string[]): string => cells.map((cell, column) => (column < 2 ? padEndColumns(cell, widths[column]) : padStartColumns(cell, widths[column]))).join('  ');
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [title, render(header), rule, ...body.map(render), rule, ...footer.map(render)].join('\n');
}

/** Formats a difference with its sign, e.g. "+1.23". */
export function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
}
