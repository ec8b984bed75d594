/**
 * Mirror padding for whole images. Convolutions with 'same' padding see zeros beyond the
 * border, which a model trained on interior patches never saw. Extending the image by
 * reflection first gives the border pixels real-looking context.
 */

/** Maps an index outside [0, length) back inside by reflection about the edge pixels. */
function reflectIndex(index: number, length: number): number {
  if (length === 1) return 0;
  const period = 2 * (length - 1);
  const folded = ((index % period) + period) % period;
  return folded < length ? folded : period - folded;
}

/** Returns the image extended by `pad` pixels on every side, mirrored at its edges. */
export function padReflect(data: Uint8Array, width: number, height: number, channels: number, pad: number): Uint8Array {
  const paddedWidth = width + 2 * pad;
  const paddedHeight = height + 2 * pad;
  const padded = new Uint8Array(paddedWidth * paddedHeight * channels);

  for (let y = 0; y < paddedHeight; y++) {
    const sourceRow = reflectIndex(y - pad, height) * width;
    for (let x = 0; x < paddedWidth; x++) {
      const source = (sourceRow + reflectIndex(x - pad, width)) * channels;
      const target = (y * paddedWidth + x) * channels;
      for (let c = 0; c < channels; c++) padded[target + c] = data[source + c];
    }
  }
  return padded;
}

/** Cuts `pad` pixels from every side of an image, undoing padReflect. */
export function cropBorder(data: Uint8Array, paddedWidth: number, paddedHeight: number, channels: number, pad: number): Uint8Array {
  const width = paddedWidth - 2 * pad;
  const height = paddedHeight - 2 * pad;
  const cropped = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    const start = ((y + pad) * paddedWidth + pad) * channels;
    cropped.set(data.subarray(start, start + width * channels), y * width * channels);
  }
  return cropped;
}
