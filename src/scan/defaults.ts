/**
 * Defaults of a video scan, apart from scan.ts so that pipeline validation reads them without
 * loading TensorFlow.js. Segments shorter than 3 frames are flicker, and runs up to 10 frames
 * apart (1 s at 10 fps) are one event.
 */
export const DEFAULT_SCAN_OPTIONS = Object.freeze({ minSegmentFrames: 3, mergeGapFrames: 10, thumbnailWidth: 320, saveEverySeconds: 10 });
