import sharp from 'sharp';

import { escapeXml } from './plot.js';

/** A decoded video frame, HWC, 1 (grey) or 3 (RGB) channels. */
export interface RawFrame {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly data: Uint8Array;
}

/** Per-pixel squared error of the model's output for one frame, at the model's size, row-major. */
export interface ErrorMap {
  readonly width: number;
  readonly height: number;
  readonly values: Float32Array;
}

/**
 * Renders a frame with the model's error map drawn over it in red, and a caption line.
 * The error map is scaled up bilinearly to the frame. A pixel whose squared error is at most
 * `threshold`, the frame-level threshold, is left as it is, and red grows to full strength at
 * ten times it, so that thumbnails of one video share a scale and compare by eye.
 */
export async function renderErrorThumbnail(frame: RawFrame, error: ErrorMap, threshold: number, caption: string): Promise<Buffer> {
  const { width, height } = frame;
  const rgb = new Uint8Array(width * height * 3);
  const scaleX = error.width / width;
  const scaleY = error.height / height;

  for (let y = 0; y < height; y++) {
    const sourceY = clamp((y + 0.5) * scaleY - 0.5, 0, error.height - 1);
    const y0 = Math.floor(sourceY);
    const y1 = Math.min(error.height - 1, y0 + 1);
    const fy = sourceY - y0;
    for (let x = 0; x < width; x++) {
      const sourceX = clamp((x + 0.5) * scaleX - 0.5, 0, error.width - 1);
      const x0 = Math.floor(sourceX);
      const x1 = Math.min(error.width - 1, x0 + 1);
      const fx = sourceX - x0;
      const value =
        (1 - fy) * ((1 - fx) * error.values[y0 * error.width + x0] + fx * error.values[y0 * error.width + x1]) +
        fy * ((1 - fx) * error.values[y1 * error.width + x0] + fx * error.values[y1 * error.width + x1]);
      // Up to 70 % red at full error, so the scene stays readable under the heat.
      const alpha = 0.7 * clamp(threshold > 0 ? (value - threshold) / (9 * threshold) : 0, 0, 1);

      const pixel = y * width + x;
      const source = pixel * frame.channels;
      const r = frame.data[source];
      const g = frame.channels === 3 ? frame.data[source + 1] : r;
      const b = frame.channels === 3 ? frame.data[source + 2] : r;
      rgb[pixel * 3] = Math.round(r * (1 - alpha) + 255 * alpha);
      rgb[pixel * 3 + 1] = Math.round(g * (1 - alpha));
      rgb[pixel * 3 + 2] = Math.round(b * (1 - alpha));
    }
  }

  const band = 22;
  const captionSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${band}"><rect width="${width}" height="${band}" fill="black"/><text x="6" y="16" font-family="sans-serif" font-size="13" fill="white">${escapeXml(caption)}</text></svg>`;
  return sharp({ create: { width, height: height + band, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .composite([
      { input: Buffer.from(rgb), raw: { width, height, channels: 3 }, left: 0, top: 0 },
      { input: Buffer.from(captionSvg), left: 0, top: height },
    ])
    .png()
    .toBuffer();
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}
