import { COLORIZE_TRAINING } from './colorize.js';
import { DENOISE_TRAINING } from './denoise.js';
import type { TaskTrainOptions, TrainingItem, TrainingTask } from './trainer.js';
import { UPSCALE_TRAINING } from './upscale.js';
import { VIDEO_ANOMALY_TRAINING } from './video-anomaly.js';

/** The tasks that `darkroom train` accepts, by the name it takes. */
export const TRAINING_TASKS: ReadonlyMap<string, TrainingTask<TaskTrainOptions, TrainingItem>> = new Map(
  [DENOISE_TRAINING, COLORIZE_TRAINING, UPSCALE_TRAINING, VIDEO_ANOMALY_TRAINING].map((task) => [task.command, task as unknown as TrainingTask<TaskTrainOptions, TrainingItem>]),
);
