import { describe, expect, it } from 'vitest';

import { type ColorizeEvalRow, formatColorizeTable } from '../src/eval/colorize.js';
import { renderTable } from '../src/eval/table.js';
import { displayWidth } from '../src/text.js';

function row(photo: string, split: ColorizeEvalRow['split'], model: number, modelColourfulness: number): ColorizeEvalRow {
  return { photo, split, width: 64, height: 48, grey: 20, model, originalColourfulness: 40, modelColourfulness };
}

describe('colorize eval table', () => {
  it('leaves trained and calibration photos out of the held-out mean', () => {
    const table = formatColorizeTable([row('a.jpg', 'train', 30, 40), row('b.jpg', 'calibration', 28, 36), row('c.jpg', 'validation', 22, 20), row('d.jpg', 'unseen', 21, 10)]);
    const lines = table.split('\n');

    const all = lines.find((line) => line.startsWith('mean '));
    const heldOut = lines.find((line) => line.startsWith('mean, not trained or calibrated on'));
    expect(all).toMatch(/4 photos\s+20\.00\s+25\.25\s+\+5\.25\s+40\.0\s+26\.5\s+66%$/);
    expect(heldOut).toMatch(/2 photos\s+20\.00\s+21\.50\s+\+1\.50\s+40\.0\s+15\.0\s+38%$/);
    expect(lines.find((line) => line.startsWith('b.jpg'))).toMatch(/^b\.jpg\s+calibration\s/);
  });
});

describe('renderTable', () => {
  it('aligns rows with wide characters', () => {
    const table = renderTable('title', ['photo', 'split', 'PSNR'], [['照片.jpg', 'train', '21.50'], ['photo.jpg', 'unseen', '9.00']], [['mean', '2 photos', '15.25']]);

    const widths = table.split('\n').slice(1).map((line) => displayWidth(line));
    expect(new Set(widths).size).toBe(1);
  });
});
