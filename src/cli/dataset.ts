import path from 'node:path';

import { classNamesFor, KNOWN_CLASS_NAMES, readIdx } from '../dataset/idx.js';
import { parseRowLabels, parseTileSize, sliceSheet } from '../dataset/slice.js';
import { type DatasetImage, writeImageDataset } from '../dataset/write.js';
import { DarkroomError, invalidOption } from '../errors.js';
import { createLogger } from '../log.js';
import { readNumber, readPath } from '../train/options.js';
import { parseCommandArgs, toCamelCase } from './args.js';

export const DATASET_HELP = `Usage: darkroom dataset <slice|import-idx> ... --out DIR

Turns image collections into folders of PNG files, one sub-folder per class, which
"darkroom train vae|gan" and "darkroom eval generator" read.

  darkroom dataset slice SHEET --tile WxH --out DIR [--labels rows:N] [--test-fraction X]
      Cuts a sheet of equal tiles into files, in row order. With --labels rows:N, each block
      of N tile rows is one class, named 0, 1, 2, ... For the OpenCV digits sheet:
        darkroom dataset slice digits.png --tile 20x20 --labels rows:5 --out data/digits
      With --test-fraction X, every 1/X-th tile of each class goes to DIR/test/<class>/ and
      the rest to DIR/train/<class>/, so that a generator can be judged on digits it never saw.
  darkroom dataset import-idx IMAGES LABELS --out DIR [--names fashion-mnist|mnist]
      Reads MNIST-format (IDX) image and label files, gzipped or not, into DIR/<class>/.
      Classes are named after the dataset when it is known (Fashion-MNIST is recognised from
      the file name, or named with --names); otherwise they are numbered.

The output folder must be new or empty. Files are written to a hidden folder beside it that is
renamed when the last one is written, so a stopped run leaves no half dataset.`;

const DATASET_OPTIONS = {
  out: { type: 'string' },
  tile: { type: 'string' },
  labels: { type: 'string' },
  'test-fraction': { type: 'string' },
  names: { type: 'string' },
} as const;

export async function datasetCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('dataset', args, DATASET_OPTIONS);
  if (values.help) {
    process.stdout.write(DATASET_HELP + '\n');
    return 0;
  }
  const raw = toCamelCase(values);
  const [action, ...inputs] = positionals;
  const log = createLogger('dataset');

  if (action === 'slice') {
    if (inputs.length !== 1) throw new DarkroomError('USAGE', `darkroom dataset slice: expected one sheet image but received ${inputs.length}; see "darkroom dataset --help"`);
    if (values.names !== undefined) throw new DarkroomError('USAGE', 'darkroom dataset slice: --names applies to import-idx only');
    const out = readPath(raw, 'out');
    const { tiles, columns, rows } = await sliceSheet(inputs[0], {
      ...parseTileSize(values.tile),
      rowsPerClass: parseRowLabels(values.labels),
      testFraction: readNumber(raw, 'testFraction', 0, 0, 0.9),
    });
    log.info(`${inputs[0]}: ${columns} x ${rows} tiles`);
    const counts = await writeImageDataset(out, tiles, tiles.length, 'slice');
    log.info(`Wrote ${tiles.length} images to ${out}: ${formatCounts(counts)}`);
    return 0;
  }

  if (action === 'import-idx') {
    if (inputs.length !== 2) throw new DarkroomError('USAGE', `darkroom dataset import-idx: expected IMAGES and LABELS files but received ${inputs.length} paths; see "darkroom dataset --help"`);
    if (values.tile !== undefined || values.labels !== undefined || values['test-fraction'] !== undefined) {
      throw new DarkroomError('USAGE', 'darkroom dataset import-idx: --tile, --labels and --test-fraction apply to slice only');
    }
    const out = readPath(raw, 'out');
    const names = values.names;
    if (names !== undefined && !(typeof names === 'string' && names in KNOWN_CLASS_NAMES)) {
      throw invalidOption(`one of ${Object.keys(KNOWN_CLASS_NAMES).join(', ')}`, '--names', names, 'USAGE');
    }
    const [imagesFile, labelsFile] = inputs;
    const images = await readIdx(imagesFile);
    const labels = await readIdx(labelsFile);
    if (images.dims.length !== 3) throw new DarkroomError('INVALID_INPUT', `${imagesFile} contains an array of ${images.dims.join('x')}, not images (count x height x width)`, { file: imagesFile });
    if (labels.dims.length !== 1) throw new DarkroomError('INVALID_INPUT', `${labelsFile} contains an array of ${labels.dims.join('x')}, not one label per image`, { file: labelsFile });
    const [count, height, width] = images.dims;
    if (labels.dims[0] !== count) throw new DarkroomError('INVALID_INPUT', `${imagesFile} has ${count} images but ${labelsFile} has ${labels.dims[0]} labels`, { file: labelsFile });

    const classCount = Math.max(...labels.data) + 1;
    const classNames = classNamesFor(names as string | undefined, imagesFile, classCount);
    log.info(`${path.basename(imagesFile)}: ${count} images of ${width}x${height}, ${classCount} classes (${classNames.join(', ')})`);
    const digits = String(count - 1).length;
    function* items(): Generator<DatasetImage> {
      for (let index = 0; index < count; index++) {
        yield {
          className: classNames[labels.data[index]],
          name: String(index).padStart(digits, '0'),
          width,
          height,
          channels: 1,
          pixels: images.data.subarray(index * width * height, (index + 1) * width * height),
        };
      }
    }
    const counts = await writeImageDataset(out, items(), count, 'import');
    log.info(`Wrote ${count} images to ${out}: ${formatCounts(counts)}`);
    return 0;
  }

  throw new DarkroomError('USAGE', `darkroom dataset: expected "slice" or "import-idx" but received ${JSON.stringify(action ?? '')}; see "darkroom dataset --help"`);
}

function formatCounts(counts: ReadonlyMap<string, number>): string {
  return [...counts].map(([key, value]) => `${key} ${value}`).join(', ');
}
