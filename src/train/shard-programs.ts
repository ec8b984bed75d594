import { type ShardProgram, singleModelProgram } from './data-parallel.js';
import { FACESWAP_COMMAND, faceSwapProgram } from './faceswap.js';
import { TRAINING_TASKS } from './tasks.js';

/**
 * Finds the shard program of a `darkroom train` task. Replica threads call it, because they
 * know a task only by its name and options.
 */
export function shardProgramFor(command: string, options: Readonly<Record<string, unknown>>): ShardProgram {
  if (command === FACESWAP_COMMAND) return faceSwapProgram;

  const task = TRAINING_TASKS.get(command);
  if (task === undefined) throw new Error(`No training task is called ${JSON.stringify(command)}`);
  return singleModelProgram(task.loss(options as never));
}
