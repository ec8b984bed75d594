import path from 'node:path';

import { DarkroomError } from '../errors.js';
import { DEFAULT_FACE_OPTIONS, extractFaces, MAX_YAW_RATIO, resolveFaceExtractOptions, SAME_PERSON_DISTANCE, SPLIT_PERSON_DISTANCE } from '../faces/extract.js';
import { addLatentMeans } from '../faces/latent-means.js';
import { createLogger } from '../log.js';
import { countOf } from '../text.js';
import { readInteger, readPath } from '../train/options.js';
import { interruptSignal, parseCommandArgs, toCamelCase } from './args.js';
import { startBackend } from './backend.js';

export const FACES_HELP = `Usage: darkroom faces extract <photos, videos or folders> --out DIR [options]
       darkroom faces latent-means --model DIR [--a DIR --a-identity N --b DIR --b-identity N]

Finds the faces in photos and video frames with face-api (SSD MobileNet detector, 68 landmarks,
128-D recognition descriptor; the weights ship inside the npm package), aligns each face by its
eyes, nose tip and mouth corners into a square crop, and writes

  DIR/faces/<source>-<frame>-<k>.png   the crops (frame 0 for a photo, k counts faces in the frame)
  DIR/faces.json                       per crop: source, frame and time, detection score and box,
                                       the 2x3 alignment matrix and its inverse, the landmarks in
                                       the crop and the descriptor; per input file, what was found

Options:
  --out DIR            a new or empty folder; written to a hidden folder renamed at the end
  --size 64|128        side of the crops in pixels (default ${DEFAULT_FACE_OPTIONS.size})
  --every N            take every Nth frame of a video (default ${DEFAULT_FACE_OPTIONS.every})
  --min-size PX        skip faces whose box is smaller (default ${DEFAULT_FACE_OPTIONS.minSize})
  --min-score X        detection confidence from 0.05 to 1 (default ${DEFAULT_FACE_OPTIONS.minScore})
  --reference IMAGE    keep only faces of the person in this photo (its most
                       confident face)
  --max-distance D     with --reference: the largest descriptor distance kept (default ${DEFAULT_FACE_OPTIONS.maxDistance};
                       face-api takes ${SAME_PERSON_DISTANCE} as the limit for one person)
  --cluster K          split the faces into K identities by k-means on their descriptors

Faces turned further than about 60 degrees to a side (nose tip more than ${MAX_YAW_RATIO} eye distances
from the eyes' midpoint) are skipped. Without --cluster, faces whose descriptors lie within
${SAME_PERSON_DISTANCE} of a group's mean are grouped, and the log says when several people appear; this
can merge look-alike faces (animated characters), which --cluster K separates better.
faces.json gives each face's group as "identity".
A file that cannot be read is reported and the others go on; the exit status is then 1.

latent-means writes into a face-swap model's darkroom.json each identity's mean latent code
over its training crops, which "darkroom faceswap --identity-shift" reads. Models trained
before the identity shift existed lack them. It takes seconds and trains nothing. The crops
the model held out are left out by their file names, and crops whose faces lie nearer to the
model's other identity are rejected.

Options of latent-means:
  --model DIR          the face-swap model (required)
  --a DIR, --b DIR     each identity's crops where they are now (default: the folders the
                       model's darkroom.json names)
  --a-identity N,      the identity group of a "faces extract" folder (default: the group
  --b-identity N       the model trained on)`;

const FACES_OPTIONS = {
  out: { type: 'string' },
  size: { type: 'string' },
  every: { type: 'string' },
  'min-size': { type: 'string' },
  'min-score': { type: 'string' },
  reference: { type: 'string' },
  'max-distance': { type: 'string' },
  cluster: { type: 'string' },
  model: { type: 'string' },
  a: { type: 'string' },
  b: { type: 'string' },
  'a-identity': { type: 'string' },
  'b-identity': { type: 'string' },
} as const;

/** Flags of each action, in camelCase; the others are rejected. */
const ACTION_FLAGS = {
  extract: ['out', 'size', 'every', 'minSize', 'minScore', 'reference', 'maxDistance', 'cluster'],
  'latent-means': ['model', 'a', 'b', 'aIdentity', 'bIdentity'],
} as const;

type FacesAction = keyof typeof ACTION_FLAGS;

export async function facesCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('faces', args, FACES_OPTIONS);
  if (values.help) {
    process.stdout.write(FACES_HELP + '\n');
    return 0;
  }
  const [action, ...inputs] = positionals;
  if (action !== 'extract' && action !== 'latent-means') throw new DarkroomError('USAGE', `darkroom faces: expected "extract" or "latent-means" but received ${JSON.stringify(action ?? '')}; see "darkroom faces --help"`);
  const raw = toCamelCase(values);
  rejectOtherFlags(action, raw);
  if (action === 'latent-means') return latentMeansCommand(raw, inputs, values.backend);

  const options = resolveFaceExtractOptions(raw);
  if (inputs.length === 0) throw new DarkroomError('USAGE', 'darkroom faces extract: missing the photos, videos or folders to read; see "darkroom faces --help"');

  const log = createLogger('faces');
  await startBackend(values.backend, log);
  const signal = interruptSignal(() => log.info('Stopping after the current frame; nothing will be written'));
  const summary = await extractFaces(inputs, options, log, signal);

  const failed = summary.sources.filter((source) => source.error !== undefined).length;
  const withFaces = summary.sources.filter((source) => source.faces > 0).length;
  const withoutFace = summary.sources.length - failed - withFaces;
  const parts = [`${summary.faces} face${summary.faces === 1 ? '' : 's'} from ${withFaces} of ${summary.sources.length} file${summary.sources.length === 1 ? '' : 's'}`];
  if (withoutFace > 0) parts.push(`${withoutFace} with no face kept`);
  if (failed > 0) parts.push(`${failed} unreadable`);
  log.info(`${parts.join(', ')} -> ${summary.out}`);

  const sizes = summary.identitySizes;
  if (options.cluster !== undefined) {
    log.info(`Identities by k-means: ${sizes.join(', ')} face${sizes.length === 1 && sizes[0] === 1 ? '' : 's'} ("identity" in faces.json)`);
    if (sizes.length < options.cluster) log.warn(`Only ${countOf(sizes.length, 'identity', 'identities')} could be made from ${countOf(summary.faces, 'face')}, not the ${options.cluster} that --cluster asked for`);
    const nearest = summary.nearestIdentities;
    if (nearest !== undefined && nearest.distance < SPLIT_PERSON_DISTANCE) {
      log.warn(
        `Identities ${nearest.first} and ${nearest.second} lie only ${nearest.distance.toFixed(2)} apart (mean descriptors), as close as one person's faces split in two; ` +
          'they may be the same person. Check the crops, or run with fewer clusters',
      );
    }
  } else if (options.reference === undefined && sizes.length > 1) {
    log.info(`The faces look like ${sizes.length} different people (groups of ${sizes.join(', ')} faces, "identity" in faces.json); add --reference IMAGE to keep one`);
  }
  return failed > 0 ? 1 : 0;
}

function rejectOtherFlags(action: FacesAction, raw: Readonly<Record<string, unknown>>): void {
  const own = ACTION_FLAGS[action] as readonly string[];
  const other = (Object.keys(ACTION_FLAGS) as FacesAction[]).filter((name) => name !== action).flatMap((name) => ACTION_FLAGS[name] as readonly string[]);
  const misplaced = other.find((key) => raw[key] !== undefined && !own.includes(key));
  if (misplaced !== undefined) throw new DarkroomError('USAGE', `darkroom faces ${action}: --${misplaced.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)} does not apply; see "darkroom faces --help"`);
}

async function latentMeansCommand(raw: Readonly<Record<string, unknown>>, inputs: readonly string[], backendFlag: unknown): Promise<number> {
  if (inputs.length > 0) throw new DarkroomError('USAGE', `darkroom faces latent-means: unexpected ${JSON.stringify(inputs[0])}; it reads --model DIR`);
  const model = readPath(raw, 'model');
  const identity = (key: 'aIdentity' | 'bIdentity'): number | undefined => (raw[key] === undefined ? undefined : readInteger(raw, key, 0, 0, 1000));
  const sources = {
    ...(raw.a === undefined ? {} : { a: readPath(raw, 'a') }),
    ...(raw.b === undefined ? {} : { b: readPath(raw, 'b') }),
    aIdentity: identity('aIdentity'),
    bIdentity: identity('bIdentity'),
  };

  const log = createLogger('faces');
  await startBackend(backendFlag, log);
  const means = await addLatentMeans(model, sources, log);
  const apart = Math.hypot(...means.a.map((value, index) => value - means.b[index]));
  log.info(`Latent means written to ${path.join(path.resolve(model), 'darkroom.json')}; the two identities' mean codes lie ${apart.toFixed(2)} apart`);
  return 0;
}
