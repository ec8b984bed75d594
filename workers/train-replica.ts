/**
 * Worker thread of data-parallel training (src/train/data-parallel.ts): a replica of the networks
 * that computes the gradient of one shard of each batch and sends it to the main thread.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { parentPort, workerData } from 'node:worker_threads';

import { initBackend } from '../src/backend/select.js';
import { type ReplicaSetup, shardGradients, type ShardReply, type ShardRequest, trainableVariables } from '../src/train/data-parallel.js';
import { shardProgramFor } from '../src/train/shard-programs.js';

const setup = workerData as ReplicaSetup;
const ready = (async () => {
  await initBackend(setup.backend);
  const program = shardProgramFor(setup.command, setup.options);
  const networks: Record<string, tfl.LayersModel> = {};
  for (const [name, artifacts] of Object.entries(setup.artifacts)) networks[name] = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
  return { networks, program };
})();

async function computeShard(request: ShardRequest): Promise<{ metrics: Record<string, number>; gradients: Float32Array[] }> {
  const { networks, program } = await ready;
  const variables = trainableVariables(networks);
  if (request.weights !== undefined) {
    request.weights.forEach((values, index) => tf.tidy(() => variables[index].assign(tf.tensor(values, variables[index].shape))));
  }

  const names: string[] = [];
  const result = tf.tidy(() => {
    const tensors = request.tensors.map((tensor) => tf.tensor(tensor.values, tensor.shape));
    const shard = shardGradients(networks, program, tensors, request.scale);
    names.push(...Object.keys(shard.metrics));
    return [...Object.values(shard.metrics), ...shard.gradients];
  });
  const metrics = Object.fromEntries(names.map((name, index) => [name, result[index].dataSync()[0]]));
  // Copies, so that the transferred buffers are the gradients' own and not the backend's memory.
  const reply = { metrics, gradients: result.slice(names.length).map((gradient) => new Float32Array(gradient.dataSync())) };
  tf.dispose(result);
  return reply;
}

parentPort!.on('message', (request: ShardRequest) => {
  computeShard(request).then(
    (reply) => parentPort!.postMessage(reply, reply.gradients.map((gradient) => gradient.buffer as ArrayBuffer)),
    (error: unknown) => parentPort!.postMessage({ error: error instanceof Error ? error.message : String(error) } satisfies ShardReply),
  );
});
