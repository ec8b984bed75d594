import { SeededRandom } from './random.js';

/**
 * Adds Gaussian noise of standard deviation `sigma` (on the 0-255 scale) to an 8-bit image and
 * rounds and clips the result to 8 bits, as a noisy photo saved to disk would be. The same seed
 * gives the same noise everywhere, which evaluation relies on.
 */
export function addGaussianNoise(pixels: Uint8Array, sigma: number, seed: number): Uint8Array {
  const random = new SeededRandom(seed);
  const noisy = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const value = Math.round(pixels[i] + sigma * random.nextGaussian());
    noisy[i] = Math.min(255, Math.max(0, value));
  }
  return noisy;
}

/**
 * Adds noise to float patches in [0, 1] in place, one sigma per patch drawn uniformly from
 * [minSigma, maxSigma] (0-255 scale). Drawing the level per patch is what trains a blind model.
 * Values are clipped to [0, 1] because real noisy photos are.
 */
export function addBlindNoise(
  patches: Float32Array,
  patchValues: number,
  minSigma: number,
  maxSigma: number,
  random: SeededRandom,
): void {
  for (let start = 0; start < patches.length; start += patchValues) {
    const sigma = (minSigma + (maxSigma - minSigma) * random.next()) / 255;
    for (let i = start; i < start + patchValues; i++) {
      const value = patches[i] + sigma * random.nextGaussian();
      patches[i] = Math.min(1, Math.max(0, value));
    }
  }
}
