import type { AnomalySegment } from '../eval/video-scoring.js';

/** The contents of `<name>.report.json`. */
export interface ScanReport {
  readonly video: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  /** Duration of the decoded frames. */
  readonly durationSeconds: number;
  readonly model: { readonly dir: string; readonly version: string; readonly createdAt: string; readonly trainedOn: readonly string[] };
  readonly threshold: { readonly value: number; readonly method: string };
  readonly frames: {
    readonly decoded: number;
    /** Frame count that the container lists, or null when it lists none. */
    readonly expected: number | null;
    /** Empty packets that repeat the previous frame, counted by the container but not decoded. */
    readonly empty: number;
    /** Expected frames that were neither decoded nor empty: lost to damage or decoding errors. */
    readonly lost: number | null;
    readonly decodeStatus: string;
    readonly decodeErrors: number;
    readonly decodeMessages: readonly string[];
    readonly anomalous: number;
  };
  readonly segments: readonly (AnomalySegment & { readonly thumbnail: string })[];
  readonly scanSeconds: number;
  readonly framesPerSecond: number;
}

/** Renders `frame,time_s,score,anomalous`, one row per decoded frame. */
export function formatFramesCsv(scores: readonly number[], fps: number, threshold: number): string {
  const lines = ['frame,time_s,score,anomalous'];
  for (let frame = 0; frame < scores.length; frame++) {
    lines.push(`${frame},${(frame / fps).toFixed(3)},${scores[frame].toPrecision(6)},${scores[frame] > threshold ? 1 : 0}`);
  }
  return lines.join('\n') + '\n';
}
