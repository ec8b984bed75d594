import sharp from 'sharp';

import { permutation, SeededRandom } from '../train/random.js';

export interface LatentMapInput {
  readonly title: string;
  /** x, y per point. */
  readonly points: Float32Array;
  readonly labels: Int32Array;
  readonly classes: readonly string[];
}

const WIDTH = 900;
const HEIGHT = 760;
const MARGIN = { left: 40, right: 170, top: 40, bottom: 30 };
/** Ten colours that stay apart for the common case of ten classes (Tableau 10). */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** Renders a scatter plot of 2D points coloured by class, with a legend, as a PNG. */
export async function renderLatentMap(input: LatentMapInput): Promise<Buffer> {
  const count = input.labels.length;
  let minX = Infinity;
  let maxX = -Infinity;
  let minY = Infinity;
  let maxY = -Infinity;
  for (let index = 0; index < count; index++) {
    minX = Math.min(minX, input.points[index * 2]);
    maxX = Math.max(maxX, input.points[index * 2]);
    minY = Math.min(minY, input.points[index * 2 + 1]);
    maxY = Math.max(maxY, input.points[index * 2 + 1]);
  }
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (value: number): number => MARGIN.left + ((value - minX) / (maxX - minX || 1)) * plotWidth;
  const y = (value: number): number => MARGIN.top + plotHeight - ((value - minY) / (maxY - minY || 1)) * plotHeight;
  const colour = (label: number): string => PALETTE[label % PALETTE.length];

  // Points are drawn in a shuffled order so that the last class does not cover all the others
  // where they overlap.
  const dots: string[] = [];
  for (const index of permutation(count, new SeededRandom(1))) {
    dots.push(`<circle cx="${x(input.points[index * 2]).toFixed(1)}" cy="${y(input.points[index * 2 + 1]).toFixed(1)}" r="2" fill="${colour(input.labels[index])}" fill-opacity="0.6"/>`);
  }
  const legend = input.classes
    .map((name, index) => `<circle cx="${WIDTH - MARGIN.right + 20}" cy="${MARGIN.top + 10 + index * 22}" r="6" fill="${colour(index)}"/><text x="${WIDTH - MARGIN.right + 32}" y="${MARGIN.top + 15 + index * 22}" font-family="sans-serif" font-size="14">${escapeXml(name)}</text>`)
    .join('');

  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}">
<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>
<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#888"/>
${dots.join('')}
${legend}
<text x="${MARGIN.left}" y="24" font-family="sans-serif" font-size="14">${escapeXml(input.title)}</text>
</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
