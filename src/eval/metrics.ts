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

/**
 * PSNR in dB on luminance, Y of YCbCr with BT.601 weights in studio range
 * (Y = 16 + 65.481 R + 128.553 G + 24.966 B for R, G, B in [0, 1]), as super-resolution
 * papers report it. `border` pixels at each edge are left out, because a border of `scale`
 * pixels is where upscalers lack context.
 */
export function psnrLuminance(reference: Uint8Array, test: Uint8Array, width: number, height: number, border = 0): number {
  if (reference.length !== test.length || reference.length !== width * height * 3) {
    throw new Error(`PSNR needs two ${width}x${height} RGB images, got ${reference.length} and ${test.length} values`);
  }
  const luminance = (rgb: Uint8Array, i: number): number => 16 + (65.481 * rgb[i] + 128.553 * rgb[i + 1] + 24.966 * rgb[i + 2]) / 255;

  let squaredError = 0;
  let count = 0;
  for (let y = border; y < height - border; y++) {
    for (let x = border; x < width - border; x++) {
      const i = (y * width + x) * 3;
      const difference = luminance(reference, i) - luminance(test, i);
      squaredError += difference * difference;
      count++;
    }
  }
  if (count === 0) throw new Error(`A ${width}x${height} image has no pixels inside a border of ${border}`);
  const mse = squaredError / count;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/**
 * Colourfulness M of Hasler and Süsstrunk (2003), "Measuring colourfulness in natural images",
 * on 8-bit sRGB: with rg = R - G and yb = (R + G) / 2 - B,
 * M = sqrt(sd(rg)^2 + sd(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2). A grey image scores 0.
 */
export function colourfulness(rgb: Uint8Array): number {
  const pixels = rgb.length / 3;
  if (pixels === 0) return 0;
  let sumRg = 0;
  let sumYb = 0;
  let squaresRg = 0;
  let squaresYb = 0;
  for (let i = 0; i < rgb.length; i += 3) {
    const rg = rgb[i] - rgb[i + 1];
    const yb = (rgb[i] + rgb[i + 1]) / 2 - rgb[i + 2];
    sumRg += rg;
    sumYb += yb;
    squaresRg += rg * rg;
    squaresYb += yb * yb;
  }
  const meanRg = sumRg / pixels;
  const meanYb = sumYb / pixels;
  const varianceRg = Math.max(0, squaresRg / pixels - meanRg * meanRg);
  const varianceYb = Math.max(0, squaresYb / pixels - meanYb * meanYb);
  return Math.sqrt(varianceRg + varianceYb) + 0.3 * Math.sqrt(meanRg * meanRg + meanYb * meanYb);
}
