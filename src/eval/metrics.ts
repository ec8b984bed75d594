/**
 * Peak signal-to-noise ratio in dB between two 8-bit images of the same size (all channels),
 * with a peak of 255. Identical images give Infinity.
 */
export function psnr(reference: Uint8Array, test: Uint8Array): number {
  if (reference.length !== test.length) {
    throw new Error(`PSNR needs images of the same size, got ${reference.length} and ${test.length} values`);
  }

  let squaredError = 0;
  for (let i = 0; i < reference.length; i++) {
    const difference = reference[i] - test[i];
    squaredError += difference * difference;
  }
  const mse = squaredError / reference.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** PSNR in dB for float images in [0, 1]. */
export function psnrFloat(reference: Float32Array, test: Float32Array): number {
  let squaredError = 0;
  for (let i = 0; i < reference.length; i++) {
    const difference = reference[i] - test[i];
    squaredError += difference * difference;
  }
  const mse = squaredError / reference.length;
  return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
}
