/**
 * Face detection with face-api: SSD MobileNet v1 boxes, the 68-point landmarks (iBUG 300-W
 * order) and the 128-D descriptor of its ResNet-34 recognition net.
 */
import * as tf from '@tensorflow/tfjs-core';

import { loadFaceApi } from './face-api.js';

export type Point = readonly [x: number, y: number];

export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface DetectedFace {
  /** The detector's confidence, 0 to 1. */
  readonly score: number;
  /** In pixels of the image, the top-left corner of pixel (0, 0) at (0, 0). */
  readonly box: Box;
  /** 68 points in pixels of the image. Indices 36-41 are the eye on the image's left, 42-47 the other. */
  readonly landmarks: readonly Point[];
  /** 128 values; face-api calls two faces the same person below a Euclidean distance of 0.6. */
  readonly descriptor: Float32Array;
}

/** An 8-bit RGB image, row-major, 3 bytes a pixel. */
export interface RgbFrame {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

export interface DetectOptions {
  /** Detections below this confidence are dropped. */
  readonly minScore: number;
  /** At most this many faces, the most confident first. */
  readonly maxFaces?: number;
}

/** Finds the faces in `frame`, most confident first. The tfjs backend must be started. */
export async function detectFaces(frame: RgbFrame, options: DetectOptions): Promise<DetectedFace[]> {
  const faceApi = await loadFaceApi();
  const input = tf.tensor3d(frame.rgb, [frame.height, frame.width, 3], 'int32');

  try {
    const detectorOptions = new faceApi.SsdMobilenetv1Options({ minConfidence: options.minScore, maxResults: options.maxFaces ?? 100 });
    const results = await faceApi.detectAllFaces(input, detectorOptions).withFaceLandmarks().withFaceDescriptors();

    return results
      .map((result) => {
        const { x, y, width, height } = result.detection.box;
        return {
          score: result.detection.score,
          box: { x, y, width, height },
          landmarks: result.landmarks.positions.map((point): Point => [point.x, point.y]),
          descriptor: Float32Array.from(result.descriptor),
        };
      })
      .sort((a, b) => b.score - a.score);
  } finally {
    input.dispose();
  }
}

/**
 * The recognition net's descriptor of a face crop that is already cut out, without detection:
 * face-api pads it square and scales it to 150 x 150 itself. Used where a crop is too small for
 * the detector (64-pixel training crops). The crop differs from the chip that detectFaces
 * cuts, so compare these descriptors only with descriptors made the same way.
 */
export async function cropDescriptor(rgb: Uint8Array, size: number): Promise<Float32Array> {
  const faceApi = await loadFaceApi();
  const input = tf.tensor3d(rgb, [size, size, 3], 'int32');
  try {
    return Float32Array.from(await faceApi.nets.faceRecognitionNet.computeFaceDescriptor(input));
  } finally {
    input.dispose();
  }
}

/** Euclidean distance between two descriptors. */
export function descriptorDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let index = 0; index < a.length; index++) sum += (a[index] - b[index]) ** 2;
  return Math.sqrt(sum);
}

/** Scales a descriptor to unit length. A zero descriptor stays zero. */
export function normalisedDescriptor(descriptor: ArrayLike<number>): number[] {
  const norm = Math.hypot(...Array.from(descriptor)) || 1;
  return Array.from(descriptor, (value) => value / norm);
}

/**
 * Averages descriptors scaled to unit length and scales the mean to unit length. The result is
 * an identity's reference, against which the converter and the evaluation match faces.
 */
export function meanDescriptor(descriptors: readonly ArrayLike<number>[]): number[] {
  const sum = new Array<number>(descriptors[0].length).fill(0);
  for (const descriptor of descriptors) normalisedDescriptor(descriptor).forEach((value, index) => (sum[index] += value));
  return normalisedDescriptor(sum);
}

/** Mean of a range of landmarks, e.g. an eye's six points. */
export function landmarkCentre(landmarks: readonly Point[], from: number, to: number): Point {
  let x = 0;
  let y = 0;
  for (let index = from; index < to; index++) {
    x += landmarks[index][0];
    y += landmarks[index][1];
  }
  return [x / (to - from), y / (to - from)];
}

/**
 * The five points that alignment uses, in the order of ALIGNMENT_TEMPLATE: the eye centres (the
 * image's left first), the nose tip and the mouth corners.
 */
export function alignmentPoints(landmarks: readonly Point[]): Point[] {
  return [landmarkCentre(landmarks, 36, 42), landmarkCentre(landmarks, 42, 48), landmarks[30], landmarks[48], landmarks[54]];
}

/**
 * How far the face is turned to a side: the nose tip's horizontal offset from the midpoint of
 * the eyes, over the distance between the eyes. About 0 for a frontal face; beyond about 0.5
 * one eye is mostly hidden and the landmarks of that side are guesses.
 */
export function yawRatio(landmarks: readonly Point[]): number {
  const [left, right] = alignmentPoints(landmarks);
  const eyeDistance = Math.hypot(right[0] - left[0], right[1] - left[1]);
  const midX = (left[0] + right[0]) / 2;
  const midY = (left[1] + right[1]) / 2;

  // Measured along the eye line, so that a tilted head does not count as turned.
  const ux = (right[0] - left[0]) / eyeDistance;
  const uy = (right[1] - left[1]) / eyeDistance;
  const nose = landmarks[30];
  return ((nose[0] - midX) * ux + (nose[1] - midY) * uy) / eyeDistance;
}
