import { featheredMask, softHull } from '../faces/blend.js';
import { landmarkCentre, type Point } from '../faces/detect.js';

/**
 * Per-pixel weights of the face-swap loss, from a crop's 68 landmarks. The converter keeps only
 * the blend mask's region of a decoded face, so the loss spends the decoders' few filters there.
 * Pixels outside that region count `background` times as much as the face. The eyes and the
 * mouth, which tell people apart most, count `1 + eyesMouth` times.
 * DeepFaceLab calls these masked training and eyes and mouth priority.
 */
export interface LossWeighting {
  /** Weight of pixels outside the blend mask's region, 0 to 1. With eyesMouth 0, a background of 1 gives the plain loss. */
  readonly background: number;
  /** Extra weight of the eyes and the mouth, on top of the face's 1. */
  readonly eyesMouth: number;
}

export const DEFAULT_LOSS_WEIGHTING: LossWeighting = Object.freeze({ background: 0.1, eyesMouth: 8 });
export const UNIFORM_LOSS_WEIGHTING: LossWeighting = Object.freeze({ background: 1, eyesMouth: 0 });

/** Returns whether the weighting gives every pixel weight 1, which is the plain loss. */
export function isUniformWeighting(weighting: LossWeighting): boolean {
  return weighting.background === UNIFORM_LOSS_WEIGHTING.background && weighting.eyesMouth === UNIFORM_LOSS_WEIGHTING.eyesMouth;
}

/**
 * Landmark groups of the 68-point scheme (iBUG 300-W) and how far each hull grows about its
 * centre. An eye's hull is a thin almond, so it grows to take in the lids and the brow's lower
 * edge. The mouth's outer lip line already encloses the lips.
 */
const FEATURES: readonly { readonly from: number; readonly to: number; readonly grow: number }[] = [
  { from: 36, to: 42, grow: 1.8 },
  { from: 42, to: 48, grow: 1.8 },
  { from: 48, to: 60, grow: 1.2 },
];

function grown(points: readonly Point[], factor: number): Point[] {
  const centre = landmarkCentre(points, 0, points.length);
  return points.map((point): Point => [centre[0] + (point[0] - centre[0]) * factor, centre[1] + (point[1] - centre[1]) * factor]);
}

/**
 * Returns the weight map of a `size` x `size` crop: one value per pixel, row by row.
 * NOTE: the feather blurs the small eye and mouth hulls, so their peak stays under 1 + eyesMouth.
 * On crops of a cartoon clip the median peak was about 1 + 0.76 eyesMouth at 128 pixels and 1 + 0.48 eyesMouth at 64.
 */
export function faceLossWeights(landmarks: readonly Point[], size: number, weighting: LossWeighting = DEFAULT_LOSS_WEIGHTING): Float32Array {
  const weights = new Float32Array(size * size).fill(1);
  if (isUniformWeighting(weighting)) return weights;

  // The converter's default region, because the loss should favour what the blend keeps.
  const face = featheredMask(landmarks, size, 'face');
  for (let index = 0; index < weights.length; index++) weights[index] = weighting.background + (1 - weighting.background) * face[index];

  if (weighting.eyesMouth > 0 && landmarks.length >= 60) {
    for (const feature of FEATURES) {
      const mask = softHull(grown(landmarks.slice(feature.from, feature.to), feature.grow), size);
      for (let index = 0; index < weights.length; index++) weights[index] += weighting.eyesMouth * mask[index];
    }
  }
  return weights;
}
