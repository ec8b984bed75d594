/**
 * Worker thread of data-parallel training (src/train/data-parallel.ts): a replica of the model
 * that computes the gradient of one shard of each batch and sends it to the main thread.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { parentPort, workerData } from 'node:worker_threads';

import { initBackend } from '../src/backend/select.js';
import { type ReplicaSetup, shardGradients, type ShardReply, type ShardRequest } from '../src/train/data-parallel.js';
import { TRAINING_TASKS } from '../src/train/tasks.js';

const setup = workerData as ReplicaSetup;
const ready = (async () => {
  await initBackend(setup.backend);
  const task = TRAINING_TASKS.get(setup.command);
  if (task === undefined) throw new Error(`no training task named ${setup.command}`);
  const model = await tfl.loadLayersModel(tf.io.fromMemory(setup.artifacts));
  return { model, loss: task.loss(setup.options as never) };
})();

async function computeShard(request: ShardRequest): Promise<{ loss: number; gradients: Float32Array[] }> {
  const { model, loss } = await ready;
  const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  if (request.weights !== undefined) {
    request.weights.forEach((values, index) => tf.tidy(() => variables[index].assign(tf.tensor(values, variables[index].shape))));
  }

  const result = tf.tidy(() => {
    const inputs = tf.tensor(request.inputs, request.inputShape);
    const targets = tf.tensor(request.targets, request.targetShape);
    const shard = shardGradients(model, loss, inputs, targets, request.scale);
    return [shard.loss, ...shard.gradients];
  });
  const [value, ...gradients] = result;
  // Copies, so that the transferred buffers are the gradients' own and not the backend's memory.
  const reply = { loss: value.dataSync()[0], gradients: gradients.map((gradient) => new Float32Array(gradient.dataSync())) };
  tf.dispose(result);
  return reply;
}

parentPort!.on('message', (request: ShardRequest) => {
  computeShard(request).then(
    (reply) => parentPort!.postMessage(reply, reply.gradients.map((gradient) => gradient.buffer as ArrayBuffer)),
    (error: unknown) => parentPort!.postMessage({ error: error instanceof Error ? error.message : String(error) } satisfies ShardReply),
  );
});
