import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import { errorMap, frameErrors } from '../eval/video-scoring.js';
import type { VideoAutoencoderArchitecture } from '../models/video-anomaly.js';

type ClipGeometry = Pick<VideoAutoencoderArchitecture, 'clipLength' | 'frameWidth' | 'frameHeight'>;

/** Scores of the real frames of one clip, with what is needed to draw their error maps later. */
export interface ClipScores {
  readonly scores: Float64Array;
  /** The clip's frames in [0, 1], one after another, padding included. */
  readonly input: Float32Array;
  readonly reconstruction: Float32Array;
}

/**
 * Reconstructs one clip and returns the mean squared error of each frame. A clip shorter than
 * `clipLength`, the tail of a video, is padded by repeating its last frame, and only its real
 * frames are scored. Every clip starts from a zero ConvLSTM state, so a frame's score depends
 * only on its own clip, and a resumed scan gives the same scores as an uninterrupted one.
 */
export function scoreClip(model: tfl.LayersModel, frames: readonly Uint8Array[], geometry: ClipGeometry): ClipScores {
  const { clipLength, frameWidth, frameHeight } = geometry;
  const frameSize = frameWidth * frameHeight;
  if (frames.length === 0 || frames.length > clipLength) throw new Error(`scoreClip takes 1 to ${clipLength} frames, not ${frames.length}`);

  const input = new Float32Array(clipLength * frameSize);
  for (let t = 0; t < clipLength; t++) {
    const frame = frames[Math.min(t, frames.length - 1)];
    if (frame.length !== frameSize) throw new Error(`Frame ${t} has ${frame.length} values instead of ${frameWidth}x${frameHeight}`);
    for (let i = 0; i < frameSize; i++) input[t * frameSize + i] = frame[i] / 255;
  }

  const output = tf.tidy(() => model.predict(tf.tensor5d(input, [1, clipLength, frameHeight, frameWidth, 1])) as tf.Tensor);
  const reconstruction = output.dataSync() as Float32Array;
  output.dispose();

  const real = frames.length * frameSize;
  return { scores: frameErrors(input.subarray(0, real), reconstruction.subarray(0, real), frameSize), input, reconstruction };
}

/** Squared error of each pixel of frame `t` of a scored clip, for a heat-map thumbnail. */
export function clipErrorMap(clip: ClipScores, t: number, frameSize: number): Float32Array {
  return errorMap(clip.input.subarray(t * frameSize, (t + 1) * frameSize), clip.reconstruction.subarray(t * frameSize, (t + 1) * frameSize));
}

/** Scores a whole stretch of frames in consecutive clips, as a scan does. */
export function scoreFrames(model: tfl.LayersModel, frames: readonly Uint8Array[], geometry: ClipGeometry): { scores: Float64Array } {
  const scores = new Float64Array(frames.length);
  for (let start = 0; start < frames.length; start += geometry.clipLength) {
    const clip = scoreClip(model, frames.slice(start, start + geometry.clipLength), geometry);
    scores.set(clip.scores, start);
  }
  return { scores };
}
