import { DarkroomError } from '../errors.js';
import { createLogger, setLogLevel } from '../log.js';
import { datasetCommand } from './dataset.js';
import { evalCommand } from './eval.js';
import { facesCommand } from './faces.js';
import { faceswapCommand } from './faceswap.js';
import { generateCommand } from './generate.js';
import { infoCommand } from './info.js';
import { latentCommand } from './latent.js';
import { noiseCommand } from './noise.js';
import { runCommand } from './run.js';
import { samplesCommand } from './samples.js';
import { scanCommand } from './scan.js';
import { trainCommand } from './train.js';
import { watchCommand } from './watch.js';
import { VERSION } from './version.js';

const HELP = `darkroom ${VERSION}: trained autoencoders for your photos and videos

Usage: darkroom <command> [options]

Commands:
  watch    watch inbox/<pipeline>/ folders and write results to outbox/<pipeline>/
  run      run a pipeline once on files or folders:  darkroom run denoise photo.jpg --out DIR
  scan     scan videos for anomalous frames:         darkroom scan clip.avi --out DIR
  train    train a model on your photos or videos:   darkroom train denoise --data DIR --out DIR
  eval     measure a model on photos or videos:      darkroom eval denoise --data DIR --sigma 25
  info     show the tfjs backend, ffmpeg, pool size and installed models
  noise    write copies of photos with Gaussian noise added, to try the denoiser
  samples  write labelled sample videos to train and evaluate the video scanner:
           darkroom samples video --out samples/video
  dataset  cut an image sheet or import MNIST-format files into class folders:
           darkroom dataset import-idx IMAGES LABELS --out DIR
  generate write a synthetic image dataset from a trained VAE or GAN:
           darkroom generate gan --count 10000 --out DIR
  latent   traverse, interpolate and map the latent space of a VAE or GAN
  faces    extract aligned face crops from photos and videos:
           darkroom faces extract clip.mp4 --out DIR
  faceswap replace one identity's faces with the other's, marked as synthetic:
           darkroom faceswap --model DIR --to b clip.mp4 --out DIR

Every command takes --help, --verbose (debug output), --quiet and --backend NAME
(auto, tensorflow-gpu, tensorflow, wasm, cpu; or the DARKROOM_BACKEND variable).
Exit status: 0 success, 1 some inputs failed or an error, 2 usage or pipeline-file error,
130 interrupted.`;

const COMMANDS: Record<string, (args: readonly string[]) => Promise<number>> = {
  watch: watchCommand,
  run: runCommand,
  train: trainCommand,
  eval: evalCommand,
  info: infoCommand,
  noise: noiseCommand,
  scan: scanCommand,
  samples: samplesCommand,
  dataset: datasetCommand,
  generate: generateCommand,
  latent: latentCommand,
  faces: facesCommand,
  faceswap: faceswapCommand,
};

/** Runs the CLI and returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--verbose') || argv.includes('-v')) setLogLevel('debug');
  else if (argv.includes('--quiet') || argv.includes('-q')) setLogLevel('warn');

  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(HELP + '\n');
    return command === undefined ? 2 : 0;
  }
  if (command === '--version') {
    process.stdout.write(VERSION + '\n');
    return 0;
  }

  const handler = COMMANDS[command];
  if (handler === undefined) {
    process.stderr.write(`darkroom: unknown command ${JSON.stringify(command)}; expected one of ${Object.keys(COMMANDS).join(', ')} (see "darkroom --help")\n`);
    return 2;
  }

  try {
    return await handler(rest);
  } catch (error) {
    return reportFatal(error);
  }
}

function reportFatal(error: unknown): number {
  const log = createLogger('darkroom');
  if (error instanceof DarkroomError) {
    log.error(error.message);
    if (error.code === 'INTERRUPTED') return 130;
    return error.code === 'USAGE' || error.code === 'INVALID_OPTION' || error.code === 'INVALID_PIPELINE' ? 2 : 1;
  }
  log.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return 1;
}
