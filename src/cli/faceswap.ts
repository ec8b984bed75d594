import { mkdir, rmdir } from 'node:fs/promises';
import path from 'node:path';

import { assertNotAFile } from '../dataset/write.js';
import { DarkroomError } from '../errors.js';
import { listPhotosAndVideos, MAX_YAW_RATIO } from '../faces/extract.js';
import { DEFAULT_SWAP_OPTIONS, describeSwap, FaceSwapper, type FaceSwapOptions, noFaceError, noLatentMeansError, noLatentMeansWarning, resolveSwapTarget, swapModelOf, swapOutputPath, swapPhoto, swapVideo } from '../faces/swap.js';
import { resolveColourMatch, resolveMaskRegion } from '../faces/blend.js';
import { MAX_IDENTITY_SHIFT, resolveIdentityShift } from '../faces/identity-shift.js';
import { SYNTHETIC_NOTE } from '../faces/synthetic.js';
import { createLogger } from '../log.js';
import { mediaKind } from '../media/kind.js';
import { loadFaceSwap } from '../models/faceswap.js';
import { countOf } from '../text.js';
import { readInteger, readNumber, readPath, type RawOptions } from '../train/options.js';
import { interruptSignal, parseCommandArgs, toCamelCase } from './args.js';
import { startBackend } from './backend.js';
import { describeFailure } from './project.js';

export const FACESWAP_HELP = `Usage: darkroom faceswap --model DIR --to a|b <photos, videos or folders...> --out DIR [options]

Replaces the faces of one identity with the other, using a face-swap model from
"darkroom train faceswap". For each face: detection and 68 landmarks (face-api), alignment to
the template and crop size the model trained on, the shared encoder and the decoder of the
--to identity (each face's latent code first moved toward that identity's; see
--identity-shift), Reinhard colour transfer in Lab to the original face, and a feathered mask (the
landmarks' convex hull with the forehead added, eroded and blurred; see --mask) through which
the decoded face is warped back.
With --to b, the faces nearer to identity a's mean descriptor than to b's are swapped; a model
without descriptors in its darkroom.json swaps every face, and the log says so.

Folders are not searched recursively. Photos keep their name and format; videos keep their frame rate and audio (copied when the
container takes the codec) and are written as .mp4 when their container is not .mp4, .m4v,
.mov, .mkv or .avi. Every output carries the note "${SYNTHETIC_NOTE.split(':')[0]}: ..." in its metadata (XMP
dc:description for photos, the comment tag for videos). A photo with no face to swap is
reported and not written, and so is a video in which no face was swapped. An unreadable file
is reported and the others go on; a missing one is a usage error before any work.
Exit status: 0 when every file was read, 1 when some could not be, 2 for a usage error.

Only swap faces of people who have agreed to it.

Options:
  --model DIR       face-swap model folder (required)
  --to a|b          the identity the faces become (required)
  --out DIR         output folder (created if missing)
  --label           also draw a visible "SYNTHETIC" caption in the lower left corner
  --min-size PX     leave faces whose box is smaller alone (default ${DEFAULT_SWAP_OPTIONS.minSize})
  --min-score X     detection confidence from 0.05 to 1 (default ${DEFAULT_SWAP_OPTIONS.minScore})
  --mask REGION     the region replaced: face, the landmarks' hull with the forehead above
                    the brows, or hull, brows to chin only (default ${DEFAULT_SWAP_OPTIONS.mask})
  --colour-match M  lab: the decoded face takes the original's mean and spread of L, a and b;
                    lightness: of L only, keeping the target's skin tone; none (default
                    ${DEFAULT_SWAP_OPTIONS.colourMatch})
  --identity-shift X
                    0 to ${MAX_IDENTITY_SHIFT} (default ${DEFAULT_SWAP_OPTIONS.identityShift}): moves each face's latent code toward the target
                    identity by X times the difference between the two identities' mean
                    codes. 0 is the plain swap. 1 swaps the source's mean code for the
                    target's and keeps the face's own offset from it (pose, expression).
                    It needs the model's latent means; see "darkroom faces latent-means"
                    for older models

Faces turned further than about 60 degrees to a side (nose tip more than ${MAX_YAW_RATIO} eye
distances from the eyes' midpoint) are left alone, as "faces extract" skips them.`;

const FACESWAP_OPTIONS = {
  model: { type: 'string' },
  to: { type: 'string' },
  out: { type: 'string' },
  label: { type: 'boolean' },
  'min-size': { type: 'string' },
  'min-score': { type: 'string' },
  mask: { type: 'string' },
  'colour-match': { type: 'string' },
  'identity-shift': { type: 'string' },
} as const;

export interface FaceSwapCommandOptions extends FaceSwapOptions {
  readonly model: string;
  readonly out: string;
  /** Strength of the move of each face's latent code toward the target identity's mean code, 0 to 2 (see `LatentMeans`); the model's decoder applies it. */
  readonly identityShift: number;
}

/** Resolves the command's flags, camel-cased, into frozen options with every default filled in. */
export function resolveFaceSwapCommandOptions(raw: RawOptions): Readonly<FaceSwapCommandOptions> {
  return Object.freeze({
    model: readPath(raw, 'model'),
    to: resolveSwapTarget(raw.to, '--to'),
    out: readPath(raw, 'out'),
    label: raw.label === true,
    minSize: readInteger(raw, 'minSize', DEFAULT_SWAP_OPTIONS.minSize, 1, 100_000),
    minScore: readNumber(raw, 'minScore', DEFAULT_SWAP_OPTIONS.minScore, 0.05, 1),
    mask: resolveMaskRegion(raw.mask ?? DEFAULT_SWAP_OPTIONS.mask, '--mask'),
    colourMatch: resolveColourMatch(raw.colourMatch ?? DEFAULT_SWAP_OPTIONS.colourMatch, '--colour-match'),
    identityShift: resolveIdentityShift(raw.identityShift ?? DEFAULT_SWAP_OPTIONS.identityShift, '--identity-shift'),
  });
}

export async function faceswapCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('faceswap', args, FACESWAP_OPTIONS);
  if (values.help) {
    process.stdout.write(FACESWAP_HELP + '\n');
    return 0;
  }
  const options = resolveFaceSwapCommandOptions(toCamelCase(values));
  if (positionals.length === 0) throw new DarkroomError('USAGE', 'darkroom faceswap: missing the photos or videos to convert; see "darkroom faceswap --help"');
  const inputs = await listPhotosAndVideos(positionals.map((file) => path.resolve(file)), 'faceswap');

  const log = createLogger('faceswap');
  await startBackend(values.backend, log);
  const loaded = await loadFaceSwap(options.model);
  const model = swapModelOf(loaded, options.to, options.identityShift);
  const swapper = new FaceSwapper(model, options);
  const source = model.identities[swapper.source];
  if (model.missingLatentMeans === true && values['identity-shift'] !== undefined) throw noLatentMeansError('darkroom faceswap', options.identityShift, loaded.dir);
  log.info(`Model ${loaded.dir}: ${model.size}-pixel crops, swapping ${source} (${swapper.source}) to ${model.identities[options.to]} (${options.to}); mask ${options.mask}, colour match ${options.colourMatch}, identity shift ${model.identityShift}`);
  if (model.missingLatentMeans === true) log.warn(noLatentMeansWarning(loaded.dir));
  if (model.descriptors === undefined) log.warn(`${loaded.dir}/darkroom.json has no identity descriptors, so every face is swapped, whoever it is`);

  const outDir = path.resolve(options.out);
  await assertNotAFile(outDir);
  // mkdir returns the first folder it made, or undefined when --out existed.
  const created = await mkdir(outDir, { recursive: true });
  const signal = interruptSignal(() => log.info('Stopping; the file in progress is not written'));
  let failed = 0;
  let written = 0;
  const taken = new Set<string>();

  for (const input of inputs) {
    if (signal.aborted) break;
    try {
      const kind = await mediaKind(input);
      const output = uniqueOutput(swapOutputPath(input, outDir, kind), taken);
      if (output !== swapOutputPath(input, outDir, kind)) log.info(`${input} is written to ${output}, because another input has the same name`);
      if (output === input) throw new DarkroomError('USAGE', `${input}: the output would replace the input; choose another --out folder`);
      const summary = kind === 'photo' ? await swapPhoto(input, output, swapper) : await swapVideo(input, output, swapper, { log, progress: true, signal });
      if (summary.output === undefined) {
        log.warn(`${noFaceError(input, summary.facesFound, summary.skipped).message}; nothing written`);
        continue;
      }
      written++;
      log.info(`${describeSwap(summary, swapper)} -> ${path.relative(process.cwd(), summary.output)}`);
    } catch (error) {
      if (error instanceof DarkroomError && error.code === 'INTERRUPTED') break;
      failed++;
      log.error(`failed: ${describeFailure(input, (error as Error).message)}`);
    }
  }

  // Folders that this run created and left empty (Ctrl-C, or no face in any input) are removed again.
  if (written === 0 && created !== undefined) await removeEmptyFolders(outDir, created);
  const where = written === 0 && created !== undefined ? ', so no output folder was left' : ` to ${outDir}`;
  log.info(`${written} of ${countOf(inputs.length, 'file')} written${where}${failed > 0 ? `; ${failed} could not be read` : ''}`);
  if (signal.aborted) return 130;
  return failed > 0 ? 1 : 0;
}


/** Numbers an output whose name another input of this run already took, as `darkroom run` does: clip.mp4, clip-2.mp4. */
function uniqueOutput(output: string, taken: Set<string>): string {
  const extension = path.extname(output);
  const stem = output.slice(0, output.length - extension.length);
  let candidate = output;
  for (let count = 2; taken.has(candidate); count++) candidate = `${stem}-${count}${extension}`;
  taken.add(candidate);
  return candidate;
}

/** Removes `folder` and its parents up to and including `top`, while each is empty. */
async function removeEmptyFolders(folder: string, top: string): Promise<void> {
  let current = folder;
  while (current.startsWith(top)) {
    const removed = await rmdir(current).then(() => true, () => false);
    if (!removed || current === top) return;
    current = path.dirname(current);
  }
}
