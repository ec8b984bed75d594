import { COLORIZE_TRAINING } from './colorize.js';
import { DENOISE_TRAINING } from './denoise.js';
import type { PhotoTrainOptions, TrainingTask } from './trainer.js';
import { UPSCALE_TRAINING } from './upscale.js';

/** The tasks that `darkroom train` accepts, by the name it takes. */
export const TRAINING_TASKS: ReadonlyMap<string, TrainingTask<PhotoTrainOptions>> = new Map(
  [DENOISE_TRAINING, COLORIZE_TRAINING, UPSCALE_TRAINING].map((task) => [task.command, task as unknown as TrainingTask<PhotoTrainOptions>]),
);
