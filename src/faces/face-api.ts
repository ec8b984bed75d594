/**
 * Loads @vladmandic/face-api on darkroom's own tfjs, whatever backend src/backend/select.ts chose.
 *
 * The package's node builds each require a tfjs of their own: face-api.node.js the native
 * @tensorflow/tfjs-node, face-api.node-wasm.js the @tensorflow/tfjs union package plus the wasm
 * backend. darkroom installs neither the union package nor, always, tfjs-node. The wasm build is
 * compiled here with a require() that returns the project's tfjs-core for "@tensorflow/tfjs",
 * so face-api's ops run on the engine and backend that the rest of darkroom uses. face-api only
 * calls ops, tf.tidy and tf.io.weightsLoaderFactory, all of which tfjs-core has.
 *
 * face-api also calls chained tensor methods (tensor.as3D(), tensor.div(), ...), which the union
 * package registers and tfjs-core's node build does not. installChainedOps() adds them.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

import * as tf from '@tensorflow/tfjs-core';

import { DarkroomError } from '../errors.js';

const requireFromHere = createRequire(import.meta.url);

/** The parts of face-api's API that darkroom calls; the package's own .d.ts pulls in browser types. */
export interface FaceApiPoint {
  readonly x: number;
  readonly y: number;
}

export interface FaceApiResult {
  readonly detection: { readonly score: number; readonly box: { readonly x: number; readonly y: number; readonly width: number; readonly height: number } };
  readonly landmarks: { readonly positions: readonly FaceApiPoint[] };
  readonly descriptor: Float32Array;
}

interface FaceApiNet {
  loadFromDisk(folder: string): Promise<void>;
  readonly isLoaded: boolean;
}

interface DetectionTask extends PromiseLike<unknown> {
  withFaceLandmarks(): { withFaceDescriptors(): PromiseLike<FaceApiResult[]> };
}

export interface FaceApi {
  readonly nets: {
    readonly ssdMobilenetv1: FaceApiNet;
    readonly faceLandmark68Net: FaceApiNet;
    readonly faceRecognitionNet: FaceApiNet & { computeFaceDescriptor(input: tf.Tensor3D): Promise<Float32Array> };
  };
  readonly SsdMobilenetv1Options: new (options: { minConfidence: number; maxResults?: number }) => unknown;
  detectAllFaces(input: tf.Tensor3D, options: unknown): DetectionTask;
}

/** Bodies of the chained methods that are not simply `op(this, ...args)`. */
const SPECIAL_CHAINED_OPS: Record<string, (this: tf.Tensor, ...args: never[]) => unknown> = {
  as1D() { return tf.reshape(this, [this.size]); },
  as2D(rows: number, columns: number) { return tf.reshape(this, [rows, columns]); },
  as3D(rows: number, columns: number, depth: number) { return tf.reshape(this, [rows, columns, depth]); },
  as4D(rows: number, columns: number, depth: number, depth2: number) { return tf.reshape(this, [rows, columns, depth, depth2]); },
  as5D(rows: number, columns: number, depth: number, depth2: number, depth3: number) { return tf.reshape(this, [rows, columns, depth, depth2, depth3]); },
  asScalar() { return tf.reshape(this, []); },
  asType(dtype: tf.DataType) { return tf.cast(this, dtype); },
  flatten() { return tf.reshape(this, [this.size]); },
  reshapeAs(other: tf.Tensor) { return tf.reshape(this, other.shape); },
  toBool() { return tf.cast(this, 'bool'); },
  toFloat() { return tf.cast(this, 'float32'); },
  toInt() { return tf.cast(this, 'int32'); },
  concat(other: tf.Tensor | tf.Tensor[], axis?: number) { return tf.concat([this, ...(other instanceof tf.Tensor ? [other] : other)], axis); },
  stack(other: tf.Tensor | tf.Tensor[], axis?: number) { return tf.stack([this, ...(other instanceof tf.Tensor ? [other] : other)], axis); },
};

/** Ops that face-api 1.7.15 calls as tensor methods (found by reading its dist file). */
const CHAINED_OPS = [
  'abs', 'add', 'all', 'as1D', 'as2D', 'as3D', 'as4D', 'cast', 'clipByValue', 'concat', 'conv2d', 'div', 'exp', 'expandDims',
  'floor', 'log', 'matMul', 'max', 'mean', 'min', 'mul', 'pad', 'relu', 'reshape', 'reverse', 'round', 'sigmoid', 'slice',
  'softmax', 'split', 'sqrt', 'squeeze', 'stack', 'sub', 'tile', 'toFloat', 'toInt', 'transpose', 'unstack',
];

/**
 * Adds the chained tensor methods that face-api needs, as tfjs's register_all_chained_ops does.
 * Methods already present are kept, so loading the union package later changes nothing.
 */
export function installChainedOps(): void {
  const prototype = tf.Tensor.prototype as unknown as Record<string, unknown>;
  const ops = tf as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of CHAINED_OPS) {
    if (typeof prototype[name] === 'function') continue;
    prototype[name] = SPECIAL_CHAINED_OPS[name] ?? function (this: tf.Tensor, ...args: unknown[]) { return ops[name](this, ...args); };
  }
}

/** Folder of the weights that ship inside the npm package. */
export function faceApiModelDir(): string {
  return path.join(path.dirname(requireFromHere.resolve('@vladmandic/face-api/package.json')), 'model');
}

let loading: Promise<FaceApi> | undefined;

/**
 * Returns face-api with its SSD MobileNet detector, 68-point landmark net and recognition net
 * loaded from the package's model folder. The tfjs backend must already be started.
 */
export function loadFaceApi(): Promise<FaceApi> {
  loading ??= compileFaceApi().catch((error: unknown) => {
    loading = undefined;
    throw new DarkroomError('MODEL_NOT_FOUND', `Cannot load the face models of @vladmandic/face-api: ${(error as Error).message}; reinstall it with "npm install"`, { cause: error });
  });
  return loading;
}

async function compileFaceApi(): Promise<FaceApi> {
  installChainedOps();
  const file = requireFromHere.resolve('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const source = await readFile(file, 'utf8');
  const run = vm.compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file });
  const module = { exports: {} as unknown };
  const requireFromPackage = createRequire(file);
  const requireShared = (name: string): unknown => (name === '@tensorflow/tfjs' ? tf : requireFromPackage(name));
  run(module.exports, requireShared, module, file, path.dirname(file));
  const faceApi = module.exports as FaceApi;

  const modelDir = faceApiModelDir();
  await faceApi.nets.ssdMobilenetv1.loadFromDisk(modelDir);
  await faceApi.nets.faceLandmark68Net.loadFromDisk(modelDir);
  await faceApi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  return faceApi;
}
