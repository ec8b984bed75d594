import * as tfl from '@tensorflow/tfjs-layers';

export type Initializer = ReturnType<typeof tfl.initializers.heNormal>;

/**
 * Returns a factory of He-normal initialisers with consecutive seeds, so that a training seed
 * fixes the initial weights. Without a seed every initialiser draws fresh random weights.
 */
export function seededInitializers(seed: number | undefined): () => Initializer {
  let next = seed;
  return () => tfl.initializers.heNormal(next === undefined ? {} : { seed: next++ });
}
