import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError } from '../errors.js';
import { createLogger } from '../log.js';
import { decodeImage, encodeImage } from '../media/image.js';
import { readInteger, readNumber } from '../train/options.js';
import { addGaussianNoise } from '../train/noise.js';
import { parseCommandArgs, toCamelCase } from './args.js';
import { describeFailure } from './project.js';

export const NOISE_HELP = `Usage: darkroom noise <photos...> --out DIR [--sigma 25] [--seed 1]

Writes copies of photos with Gaussian noise added (0-255 scale, fixed seed), to try the
denoiser on photos whose clean version you have. Outputs keep the input's name and format;
for exact noise use PNG inputs, because JPEG compression smooths part of it away.

Options:
  --out DIR     output folder (created if missing)
  --sigma X     noise standard deviation on the 0-255 scale (default 25)
  --seed N      noise seed (default 1)`;

const NOISE_OPTIONS = {
  out: { type: 'string' },
  sigma: { type: 'string' },
  seed: { type: 'string' },
} as const;

/** The largest photo the noise command reads, as for the default pipeline limit. */
const MAX_PIXELS = 100_000_000;

export async function noiseCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('noise', args, NOISE_OPTIONS);
  if (values.help) {
    process.stdout.write(NOISE_HELP + '\n');
    return 0;
  }
  if (typeof values.out !== 'string' || values.out === '') throw new DarkroomError('USAGE', 'darkroom noise: missing --out DIR, the folder for the noisy copies');
  if (positionals.length === 0) throw new DarkroomError('USAGE', 'darkroom noise: missing the photos to add noise to');

  const raw = toCamelCase(values);
  const sigma = readNumber(raw, 'sigma', 25, 0, 255);
  const seed = readInteger(raw, 'seed', 1, 0, 2 ** 31 - 1);
  const log = createLogger('noise');
  await mkdir(values.out, { recursive: true });

  let failed = 0;
  for (const [index, input] of positionals.entries()) {
    try {
      const image = await decodeImage(input, { maxPixels: MAX_PIXELS });
      const outputPath = path.join(values.out, path.basename(input));
      await encodeImage({ ...image, rgb: addGaussianNoise(image.rgb, sigma, seed + index) }, outputPath);
      log.info(`${input} -> ${outputPath} (sigma ${sigma})`);
    } catch (error) {
      failed++;
      log.error(`failed: ${describeFailure(input, (error as Error).message)}`);
    }
  }
  return failed > 0 ? 1 : 0;
}
