import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import type { BackendName } from '../backend/select.js';
import { DarkroomError } from '../errors.js';
import { captureArtifacts } from '../models/storage.js';
import type { Batch } from './loop.js';

/**
 * Data-parallel training over worker threads. The wasm backend runs one thread per process, so
 * a training step on one core leaves the others idle. Each replica holds a copy of the model and
 * computes the gradient of its share of the batch; the main thread sums the shares' gradients,
 * weighted by their sizes, applies them with its optimizer, and sends the new weights with the
 * next shards. Every replica starts each step from the same weights, and the summed gradient is
 * that of the whole batch, so the result is single-thread training's up to float rounding.
 *
 * Replicas are plain worker threads, not piscina's: each keeps its model between steps, and a
 * step must reach every replica once, which a task queue does not promise.
 */

/** What a replica needs to rebuild the model and the task's loss. */
export interface ReplicaSetup {
  readonly backend: BackendName;
  /** The `darkroom train` task, whose `loss(options)` the replica calls. */
  readonly command: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly artifacts: tf.io.ModelArtifacts;
}

export interface ShardRequest {
  /** The main thread's weights after the last step, one array per trainable weight; absent on the first step. */
  readonly weights?: Float32Array[];
  readonly inputs: Float32Array;
  readonly inputShape: number[];
  readonly targets: Float32Array;
  readonly targetShape: number[];
  /** The shard's share of the batch, which scales its mean loss. */
  readonly scale: number;
}

export type ShardReply = { readonly loss: number; readonly gradients: Float32Array[] } | { readonly error: string };

export type LossFunction = (predictions: tf.Tensor, targets: tf.Tensor) => tf.Scalar;

/** Sizes of `parts` shards of a batch of `size`, as even as possible, largest first. */
export function shardSizes(size: number, parts: number): number[] {
  const count = Math.min(size, parts);
  return Array.from({ length: count }, (_, index) => Math.floor(size / count) + (index < size % count ? 1 : 0));
}

/**
 * The gradient of `loss` over a shard, scaled by the shard's share of the batch, for each
 * trainable weight in order. Replicas and the main thread both call this.
 */
export function shardGradients(model: tfl.LayersModel, loss: LossFunction, inputs: tf.Tensor, targets: tf.Tensor, scale: number): { loss: tf.Scalar; gradients: tf.Tensor[] } {
  const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.mul(loss(model.apply(inputs, { training: true }) as tf.Tensor, targets), scale) as tf.Scalar, variables);
  return { loss: value, gradients: variables.map((variable) => grads[variable.name]) };
}

/** Locates a compiled worker: beside this module in dist/, or in dist/ when running from source. */
function resolveReplicaFile(): string {
  const moduleDir = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(moduleDir, '../../workers/train-replica.js'), path.resolve(moduleDir, '../../dist/workers/train-replica.js')];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) throw new DarkroomError('INVALID_INPUT', `The training worker was not found at ${candidates[0]}; run "npm run build"`);
  return found;
}

class Replica {
  private pending: { resolve: (reply: ShardReply) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(private readonly worker: Worker) {
    worker.on('message', (reply: ShardReply) => {
      const pending = this.pending;
      this.pending = undefined;
      pending?.resolve(reply);
    });
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`a training thread stopped with exit code ${code}`)));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }

  run(request: ShardRequest): Promise<ShardReply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      const transfer = [request.inputs.buffer, request.targets.buffer] as ArrayBuffer[];
      this.worker.postMessage(request, transfer);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/**
 * The main thread's model and optimizer plus `threads - 1` replicas. `step` replaces
 * `optimizer.minimize` in the training loop.
 */
export class DataParallelTrainer {
  private weightsForReplicas: Float32Array[] | undefined;

  private constructor(
    private readonly model: tfl.LayersModel,
    private readonly optimizer: tf.Optimizer,
    private readonly loss: LossFunction,
    private readonly replicas: Replica[],
  ) {}

  /** Starts `threads - 1` replica threads with copies of `model`. */
  static async start(model: tfl.LayersModel, optimizer: tf.Optimizer, loss: LossFunction, threads: number, setup: Omit<ReplicaSetup, 'artifacts'>): Promise<DataParallelTrainer> {
    const artifacts = await captureArtifacts(model);
    const file = resolveReplicaFile();
    const replicas = Array.from({ length: threads - 1 }, () => new Replica(new Worker(file, { workerData: { ...setup, artifacts } satisfies ReplicaSetup })));
    return new DataParallelTrainer(model, optimizer, loss, replicas);
  }

  get threads(): number {
    return this.replicas.length + 1;
  }

  /** One optimizer step on `batch`, split over the threads; returns the batch's mean loss. */
  async step(batch: Batch): Promise<number> {
    const size = batch.inputs.shape[0];
    const sizes = shardSizes(size, this.threads);
    const inputs = (await batch.inputs.data()) as Float32Array;
    const targets = (await batch.targets.data()) as Float32Array;
    const inputRow = inputs.length / size;
    const targetRow = targets.length / size;

    // Replicas take the shards after the first, and start before the main thread computes its own.
    let offset = sizes[0];
    const replies = sizes.slice(1).map((shard, index) => {
      const request: ShardRequest = {
        weights: this.weightsForReplicas,
        inputs: inputs.slice(offset * inputRow, (offset + shard) * inputRow),
        inputShape: [shard, ...batch.inputs.shape.slice(1)],
        targets: targets.slice(offset * targetRow, (offset + shard) * targetRow),
        targetShape: [shard, ...batch.targets.shape.slice(1)],
        scale: shard / size,
      };
      offset += shard;
      return this.replicas[index].run(request);
    });

    const own = tf.tidy(() => {
      const shardInputs = tf.slice(batch.inputs, 0, sizes[0]);
      const shardTargets = tf.slice(batch.targets, 0, sizes[0]);
      const result = shardGradients(this.model, this.loss, shardInputs, shardTargets, sizes[0] / size);
      return [result.loss, ...result.gradients];
    });
    const [ownLoss, ...ownGradients] = own;
    let loss = (await ownLoss.data())[0];

    const answers = await Promise.all(replies);
    const variables = this.model.trainableWeights.map((weight) => weight.read() as tf.Variable);
    const summed: tf.NamedTensorMap = {};
    tf.tidy(() => {
      variables.forEach((variable, index) => {
        let gradient = ownGradients[index];
        for (const answer of answers) {
          if ('error' in answer) throw new DarkroomError('INTERNAL', `A training thread failed: ${answer.error}`);
          gradient = tf.add(gradient, tf.tensor(answer.gradients[index], variable.shape));
        }
        summed[variable.name] = tf.keep(gradient);
      });
    });
    for (const answer of answers) if (!('error' in answer)) loss += answer.loss;
    this.optimizer.applyGradients(summed);
    tf.dispose([...own, ...Object.values(summed)]);

    // A copy, because dataSync may hand back a view into the backend's memory, which a message would clone whole.
    this.weightsForReplicas = this.replicas.length === 0 ? undefined : variables.map((variable) => new Float32Array(variable.dataSync()));
    return loss;
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => replica.close()));
  }
}
