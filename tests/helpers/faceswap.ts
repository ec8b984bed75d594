import { buildFaceSwap, type FaceSwapMetadata, saveFaceSwap, validateFaceSwapArchitecture } from '../../src/models/faceswap.js';

export const TINY_FACESWAP = validateFaceSwapArchitecture({ size: 64, filters: 4, latentDim: 8 });

/**
 * Saves a face-swap model with random weights and hand-written metadata, as "darkroom train
 * faceswap" would write it. The tfjs backend must be started.
 */
export async function saveTinyFaceSwap(dir: string, extra: TinyMetadataExtras = {}): Promise<FaceSwapMetadata> {
  const metadata = tinyFaceSwapMetadata(extra);
  await saveFaceSwap(dir, buildFaceSwap(TINY_FACESWAP, 7), metadata);
  return metadata;
}

type TinyMetadataExtras = { descriptors?: { a: number[]; b: number[] }; latentMeans?: { a: number[]; b: number[] }; training?: Record<string, unknown> };

/** Metadata of a tiny face-swap model with identities "anna" (a) and "bruno" (b). */
export function tinyFaceSwapMetadata(extra: TinyMetadataExtras = {}): FaceSwapMetadata {
  return {
    format: 'darkroom-model',
    formatVersion: 1,
    task: 'faceswap',
    version: 'test',
    createdAt: new Date(0).toISOString(),
    sizeMultiple: 16,
    inputChannels: 3,
    architecture: TINY_FACESWAP,
    identities: { a: 'anna', b: 'bruno' },
    training: extra.training ?? {},
    validation: {},
    ...(extra.descriptors === undefined ? {} : { descriptors: extra.descriptors }),
    ...(extra.latentMeans === undefined ? {} : { latentMeans: extra.latentMeans }),
  } as FaceSwapMetadata;
}
