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
 * a training step on one core leaves the others idle. Each replica keeps a copy of the networks
 * and computes the gradient of its share of the batch. The main thread sums the shares' gradients,
 * weighted by their sizes, applies them with its optimizer, and sends the new weights with the
 * next shards. Every replica starts each step from the same weights, and the summed gradient is
 * that of the whole batch, so the result is single-thread training's up to float rounding.
 *
 * Replicas are plain worker threads, not piscina's: each keeps its model between steps, and a
 * step must reach every replica once, which a task queue does not promise.
 */

/** Setup of a replica thread: enough to rebuild the networks and the task's loss. */
export interface ReplicaSetup {
  readonly backend: BackendName;
  /** The `darkroom train` task, whose shard program (src/train/shard-programs.ts) the replica runs. */
  readonly command: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** Each network's topology and weights, by name, in the order of their trainable weights. */
  readonly artifacts: Readonly<Record<string, tf.io.ModelArtifacts>>;
}

/** A tensor as it crosses threads. */
export interface ShardTensor {
  readonly values: Float32Array;
  readonly shape: number[];
}

export interface ShardRequest {
  /** The main thread's weights after the last step, one array per trainable weight; absent on the first step. */
  readonly weights?: Float32Array[];
  /** The shard's rows of each of the step's tensors. */
  readonly tensors: ShardTensor[];
  /** The shard's share of the batch, which scales its mean loss and metrics. */
  readonly scale: number;
}

export type ShardReply = { readonly metrics: Record<string, number>; readonly gradients: Float32Array[] } | { readonly error: string };

export type LossFunction = (predictions: tf.Tensor, targets: tf.Tensor) => tf.Scalar;

/**
 * Function of a training step: from the networks and the step's tensors (batch first), the
 * batch means to minimise (`loss`) and to report. Shards' means, weighted by their shares, then
 * add up to the whole batch's.
 */
export type ShardProgram = (networks: Readonly<Record<string, tfl.LayersModel>>, tensors: readonly tf.Tensor[]) => { readonly loss: tf.Scalar } & Readonly<Record<string, tf.Scalar>>;

/** Returns the program of a one-network task, whose network `model` predicts tensors[1] from tensors[0]. */
export function singleModelProgram(loss: LossFunction): ShardProgram {
  return (networks, [inputs, targets]) => ({ loss: loss(networks.model.apply(inputs, { training: true }) as tf.Tensor, targets) });
}

/** Sizes of `parts` shards of a batch of `size`, as even as possible, largest first. */
export function shardSizes(size: number, parts: number): number[] {
  const count = Math.min(size, parts);
  return Array.from({ length: count }, (_, index) => Math.floor(size / count) + (index < size % count ? 1 : 0));
}

/** Lists the trainable variables of all networks in key order, the order in which gradients and weights travel. */
export function trainableVariables(networks: Readonly<Record<string, tfl.LayersModel>>): tf.Variable[] {
  return Object.values(networks).flatMap((network) => network.trainableWeights.map((weight) => weight.read() as tf.Variable));
}

/**
 * Computes the program's metrics and the gradient of its loss over a shard, all scaled by the
 * shard's share of the batch, for each trainable variable in order. Replicas and the main
 * thread both call this.
 */
export function shardGradients(networks: Readonly<Record<string, tfl.LayersModel>>, program: ShardProgram, tensors: readonly tf.Tensor[], scale: number): { metrics: Record<string, tf.Scalar>; gradients: tf.Tensor[] } {
  const variables = trainableVariables(networks);
  const others: Record<string, tf.Scalar> = {};
  const { value, grads } = tf.variableGrads(() => {
    const { loss, ...rest } = program(networks, tensors);
    for (const [name, metric] of Object.entries(rest)) others[name] = tf.keep(tf.mul(metric, scale));
    return tf.mul(loss, scale) as tf.Scalar;
  }, variables);
  return { metrics: { loss: value, ...others }, gradients: variables.map((variable) => grads[variable.name]) };
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
      const transfer = request.tensors.map((tensor) => tensor.values.buffer as ArrayBuffer);
      this.worker.postMessage(request, transfer);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/**
 * The main thread's networks and optimizer plus `threads - 1` replicas. `step` replaces
 * `optimizer.minimize` in a training loop.
 */
export class DataParallelTrainer {
  private weightsForReplicas: Float32Array[] | undefined;

  private constructor(
    private readonly networks: Readonly<Record<string, tfl.LayersModel>>,
    private readonly optimizer: tf.Optimizer,
    private readonly program: ShardProgram,
    private readonly replicas: Replica[],
  ) {}

  /** Starts `threads - 1` replica threads with copies of `networks`. */
  static async start(networks: Readonly<Record<string, tfl.LayersModel>>, optimizer: tf.Optimizer, program: ShardProgram, threads: number, setup: Omit<ReplicaSetup, 'artifacts'>): Promise<DataParallelTrainer> {
    const artifacts: Record<string, tf.io.ModelArtifacts> = {};
    for (const [name, network] of Object.entries(networks)) artifacts[name] = await captureArtifacts(network);
    const file = resolveReplicaFile();
    const replicas = Array.from({ length: threads - 1 }, () => new Replica(new Worker(file, { workerData: { ...setup, artifacts } satisfies ReplicaSetup })));
    return new DataParallelTrainer(networks, optimizer, program, replicas);
  }

  /** Starts the trainer of a one-network task, whose loss is `loss(model(inputs), targets)`. */
  static forModel(model: tfl.LayersModel, optimizer: tf.Optimizer, loss: LossFunction, threads: number, setup: Omit<ReplicaSetup, 'artifacts'>): Promise<DataParallelTrainer> {
    return DataParallelTrainer.start({ model }, optimizer, singleModelProgram(loss), threads, setup);
  }

  get threads(): number {
    return this.replicas.length + 1;
  }

  /** Takes one optimizer step of a one-network task on `batch` and returns the batch's mean loss. */
  async stepBatch(batch: Batch): Promise<number> {
    return (await this.step([batch.inputs, batch.targets])).loss;
  }

  /**
   * Takes one optimizer step on the batch of `tensors`, which share their first axis. The
   * threads split the batch; the metrics returned are those of the whole batch.
   */
  async step(tensors: readonly tf.Tensor[]): Promise<Record<string, number>> {
    const size = tensors[0].shape[0];
    const sizes = shardSizes(size, this.threads);
    const values = await Promise.all(tensors.map(async (tensor) => (await tensor.data()) as Float32Array));

    // Replicas take the shards after the first, and start before the main thread computes its own.
    let offset = sizes[0];
    const replies = sizes.slice(1).map((shard, index) => {
      const request: ShardRequest = {
        weights: this.weightsForReplicas,
        tensors: tensors.map((tensor, which) => {
          const row = values[which].length / size;
          return { values: values[which].slice(offset * row, (offset + shard) * row), shape: [shard, ...tensor.shape.slice(1)] };
        }),
        scale: shard / size,
      };
      offset += shard;
      return this.replicas[index].run(request);
    });

    const ownNames: string[] = [];
    const own = tf.tidy(() => {
      const shard = tensors.map((tensor) => tf.slice(tensor, 0, sizes[0]));
      const result = shardGradients(this.networks, this.program, shard, sizes[0] / size);
      ownNames.push(...Object.keys(result.metrics));
      return [...Object.values(result.metrics), ...result.gradients];
    });
    const ownMetrics = own.slice(0, ownNames.length);
    const ownGradients = own.slice(ownNames.length);
    const metrics: Record<string, number> = {};
    for (const [index, name] of ownNames.entries()) metrics[name] = (await ownMetrics[index].data())[0];

    const answers = (await Promise.all(replies)).map((answer) => {
      if ('error' in answer) throw new DarkroomError('INTERNAL', `A training thread failed: ${answer.error}`);
      return answer;
    });
    const variables = trainableVariables(this.networks);
    const summed: tf.NamedTensorMap = {};
    tf.tidy(() => {
      variables.forEach((variable, index) => {
        let gradient = ownGradients[index];
        for (const answer of answers) gradient = tf.add(gradient, tf.tensor(answer.gradients[index], variable.shape));
        summed[variable.name] = tf.keep(gradient);
      });
    });
    for (const answer of answers) {
      for (const name of ownNames) metrics[name] += answer.metrics[name];
    }
    this.optimizer.applyGradients(summed);
    tf.dispose([...own, ...Object.values(summed)]);

    // A copy, because dataSync may hand back a view into the backend's memory, which a message would clone whole.
    this.weightsForReplicas = this.replicas.length === 0 ? undefined : variables.map((variable) => new Float32Array(variable.dataSync()));
    return metrics;
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => replica.close()));
  }
}
