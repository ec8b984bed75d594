import { DarkroomError } from '../errors.js';
import { interpolateLatent, mapLatent, traverseLatent } from '../latent/latent.js';
import { createLogger } from '../log.js';
import { loadGenerator } from '../models/generator-storage.js';
import { readInteger, readNumber, readPath } from '../train/options.js';
import { parseCommandArgs, toCamelCase } from './args.js';
import { startBackend } from './backend.js';

export const LATENT_HELP = `Usage: darkroom latent <traverse|interpolate|map> --model DIR ... --out PATH

Looks inside the latent space of a generator trained by "darkroom train vae|gan".

  darkroom latent traverse --model DIR --out FILE.png [--class C] [--dims N] [--steps K]
                           [--range R] [--seed S]
      A grid with one row per latent dimension (the first --dims, default 10): along the row
      that dimension runs from -R to +R (default 3) in K steps (default 9); the others stay at
      the latent vector of seed S, or at zero with --seed 0 (default).
  darkroom latent interpolate A B --model DIR --out DIR [--frames N] [--class C]
      N frames (default 10) from A to B through the latent space, as frame-NN.png and
      strip.png. For a VAE, A and B are images; for a GAN, which has no encoder, two seeds.
      A conditional model draws every frame in one class: --class, else the class folder
      that A sits in, else the first class.
  darkroom latent map --model DIR --data DIR --out FILE.png [--clusters K] [--per-class N]
      Encodes every image of a folder with class sub-folders (VAE only), draws each as a
      point in 2D (the latent itself when it is 2D, else its first two principal
      components) coloured by class, and prints the purity of k-means clusters (K, by
      default the number of classes) against the classes. A conditional VAE is given the
      class beside the image, so its latent is free to hold style rather than class: expect
      low purity from it, and high purity from an unconditional one.`;

const LATENT_OPTIONS = {
  model: { type: 'string' },
  out: { type: 'string' },
  class: { type: 'string' },
  dims: { type: 'string' },
  steps: { type: 'string' },
  range: { type: 'string' },
  seed: { type: 'string' },
  frames: { type: 'string' },
  data: { type: 'string' },
  clusters: { type: 'string' },
  'per-class': { type: 'string' },
} as const;

const ACTION_FLAGS: Readonly<Record<string, readonly string[]>> = {
  traverse: ['class', 'dims', 'steps', 'range', 'seed'],
  interpolate: ['frames', 'class'],
  map: ['data', 'clusters', 'perClass', 'seed'],
};

export async function latentCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('latent', args, LATENT_OPTIONS);
  if (values.help) {
    process.stdout.write(LATENT_HELP + '\n');
    return 0;
  }
  const [action, ...inputs] = positionals;
  const allowed = action === undefined ? undefined : ACTION_FLAGS[action];
  if (allowed === undefined) throw new DarkroomError('USAGE', `darkroom latent: expected traverse, interpolate or map but received ${JSON.stringify(action ?? '')}; see "darkroom latent --help"`);
  const raw = toCamelCase(values);
  for (const key of Object.keys(raw)) {
    if (!['model', 'out', 'backend', 'verbose', 'quiet', ...allowed].includes(key)) {
      throw new DarkroomError('USAGE', `darkroom latent ${action}: --${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)} does not apply; see "darkroom latent --help"`);
    }
  }
  if (action !== 'interpolate' && inputs.length > 0) throw new DarkroomError('USAGE', `darkroom latent ${action}: unexpected argument ${JSON.stringify(inputs[0])}`);
  if (action === 'interpolate' && inputs.length !== 2) throw new DarkroomError('USAGE', `darkroom latent interpolate: expected two images (VAE) or two seeds (GAN) but received ${inputs.length} arguments`);
  if (typeof raw.model !== 'string') throw new DarkroomError('USAGE', `darkroom latent ${action}: missing --model DIR`);
  const out = readPath(raw, 'out');
  const className = typeof raw.class === 'string' ? raw.class : undefined;

  const log = createLogger('latent');
  await startBackend(values.backend, log);
  const loaded = await loadGenerator(raw.model);

  if (action === 'traverse') {
    const options = {
      out,
      className,
      seed: readInteger(raw, 'seed', 0, 0, 2 ** 31 - 1),
      dims: readInteger(raw, 'dims', 10, 1, 1024),
      steps: readInteger(raw, 'steps', 9, 2, 64),
      range: readNumber(raw, 'range', 3, 0.01, 100),
    };
    await traverseLatent(loaded, options);
    log.info(`Wrote ${out}: ${Math.min(options.dims, loaded.metadata.generator.latentDim)} latent dimensions, each from -${options.range} to +${options.range} in ${options.steps} steps`);
    return 0;
  }
  if (action === 'interpolate') {
    const written = await interpolateLatent(loaded, inputs[0], inputs[1], { out, className, frames: readInteger(raw, 'frames', 10, 2, 1000) });
    log.info(`Wrote ${written.length - 1} frames and strip.png to ${out}`);
    return 0;
  }

  if (typeof raw.data !== 'string') throw new DarkroomError('USAGE', 'darkroom latent map: missing --data DIR, a folder of images with one sub-folder per class');
  const result = await mapLatent(
    loaded,
    {
      data: raw.data,
      out,
      clusters: raw.clusters === undefined ? undefined : readInteger(raw, 'clusters', 2, 2, 1000),
      limitPerClass: raw.perClass === undefined ? undefined : readInteger(raw, 'perClass', 1, 1, 10_000_000),
      seed: readInteger(raw, 'seed', 1, 0, 2 ** 31 - 1),
    },
    log,
  );
  process.stdout.write(
    [
      `${result.images} images, ${result.clusters} k-means clusters on the latent means, purity ${(100 * result.purity).toFixed(1)} %`,
      ...result.clusterSizes.map((size, index) => `  cluster ${String(index + 1).padStart(2)}: ${String(size).padStart(6)} images, mostly ${result.clusterClasses[index]}`),
      `Map (${result.projection === 'latent' ? 'the 2D latent' : 'first two principal components'}) written to ${out}`,
    ].join('\n') + '\n',
  );
  return 0;
}
