/**
 * Evaluation of the video anomaly scanner on labelled videos: every frame is scored as a scan
 * scores it, and the scores are compared with per-frame labels by frame-level ROC AUC, overall
 * and for each kind of event.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError } from '../errors.js';
import type { Logger } from '../log.js';
import { readFrames } from '../media/video.js';
import type { LoadedModel } from '../models/storage.js';
import { ClipScorer, videoScorerFor } from '../scan/score.js';
import { VIDEO_EXTENSIONS } from '../train/video-anomaly.js';
import { LABELS_HEADER } from './sample-videos.js';
import { ANOMALY_KINDS } from './synthetic-video.js';
import { mean, renderTable } from './table.js';
import { rocAuc } from './video-scoring.js';

/** Per-frame labels read from `<stem>.labels.csv`. */
export interface FrameLabels {
  /** 1 for an anomalous frame, 0 for a normal one. */
  readonly labels: Uint8Array;
  /** The event kind of each frame, empty for normal frames. */
  readonly kinds: readonly string[];
}

export interface VideoEvalRow {
  readonly video: string;
  /** 'train' when the model trained on part of this video, 'unseen' otherwise. */
  readonly split: 'train' | 'unseen';
  readonly frames: number;
  readonly anomalousFrames: number;
  /** Frame-level ROC AUC over all frames; null when the video has only normal or only anomalous frames. */
  readonly auc: number | null;
  /** ROC AUC of the frames of each event kind against the normal frames, for the kinds present. */
  readonly aucByKind: Readonly<Record<string, number>>;
  /** Milliseconds per frame to decode and score, at the model's frame size. */
  readonly msPerFrame: number;
}

export interface VideoEvalResult {
  readonly model: string;
  readonly rows: readonly VideoEvalRow[];
  /** Videos in the folder without a labels file. */
  readonly skipped: readonly string[];
  /** Mean of the rows' AUC, null when no row has one. */
  readonly meanAuc: number | null;
  readonly meanAucByKind: Readonly<Record<string, number>>;
}

/** Path of the labels file of a video: `<stem>.labels.csv` beside it. */
export function labelsPathFor(video: string): string {
  return path.join(path.dirname(video), `${path.basename(video, path.extname(video))}.labels.csv`);
}

/**
 * Parses a labels CSV with the header `frame,label,event`: one row per frame, frames numbered
 * from 0 in order, label 0 or 1, and the event kind (may be empty). Throws INVALID_INPUT naming
 * the file and line of the first bad row.
 */
export function parseLabelsCsv(text: string, file: string): FrameLabels {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  if (lines[0]?.trim() !== LABELS_HEADER) {
    throw new DarkroomError('INVALID_INPUT', `${file}: expected the header "${LABELS_HEADER}" but found ${JSON.stringify(lines[0] ?? '')}`, { file });
  }

  const labels = new Uint8Array(lines.length - 1);
  const kinds: string[] = [];
  for (let row = 1; row < lines.length; row++) {
    const [frame, label, event = ''] = lines[row]!.split(',');
    if (Number(frame) !== row - 1 || (label !== '0' && label !== '1')) {
      throw new DarkroomError('INVALID_INPUT', `${file} line ${row + 1}: expected "${row - 1},<0 or 1>,<event>" but found ${JSON.stringify(lines[row])}`, { file });
    }
    labels[row - 1] = Number(label);
    kinds.push(label === '1' ? event.trim() : '');
  }
  return { labels, kinds };
}

/** Scores every frame of a video in consecutive clips, exactly as `darkroom scan` does. */
async function scoreVideo(file: string, loaded: LoadedModel): Promise<{ scores: number[]; seconds: number }> {
  const scorer = await videoScorerFor(loaded);
  const { frameWidth, frameHeight } = scorer.architecture;
  const started = performance.now();
  const stream = new ClipScorer(scorer);
  const scores: number[] = [];
  const reader = readFrames(file, { channels: 1, width: frameWidth, height: frameHeight });
  for await (const frame of reader) {
    const clip = stream.push(frame.data);
    if (clip !== undefined) scores.push(...clip.scores);
  }
  const tail = stream.finish();
  if (tail !== undefined) scores.push(...tail.scores);
  const summary = await reader.summary();
  if (summary.status === 'partial') {
    throw new DarkroomError('INVALID_INPUT', `${file} decoded only partly (${summary.framesDecoded} frames, ${summary.decodeErrors} errors), so its labels cannot be matched to frames`, { file });
  }
  return { scores, seconds: (performance.now() - started) / 1000 };
}

/** ROC AUC, or null when the labels are all one class. */
function aucOrNull(scores: readonly number[], labels: ArrayLike<number>): number | null {
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i]! > 0 ? 1 : 0;
  return positives === 0 || positives === labels.length ? null : rocAuc(scores, labels);
}

/** Sorts the five generated kinds first, in their usual order, then any other kinds by name. */
function orderKinds(kinds: Iterable<string>): string[] {
  const known = ANOMALY_KINDS as readonly string[];
  return [...new Set(kinds)].sort((a, b) => {
    const rank = (kind: string): number => (known.includes(kind) ? known.indexOf(kind) : known.length);
    return rank(a) - rank(b) || a.localeCompare(b);
  });
}

function isTrainingVideo(loaded: LoadedModel, name: string): boolean {
  const { train, validation } = loaded.metadata.training.files;
  return [...train, ...validation].some((item) => item === name || item.startsWith(`${name} frames `));
}

/**
 * Scores each video in `data` that has a `<stem>.labels.csv` beside it and measures the
 * frame-level ROC AUC, overall and per event kind. A kind's AUC compares the frames of that
 * kind's events with the normal frames, leaving out the frames of other events.
 */
export async function evaluateVideoAnomaly(loaded: LoadedModel, options: { readonly data: string }, log: Logger): Promise<VideoEvalResult> {
  let names: string[];
  try {
    names = (await readdir(options.data)).filter((name) => !name.startsWith('.') && VIDEO_EXTENSIONS.has(path.extname(name).toLowerCase())).sort();
  } catch (error) {
    throw new DarkroomError('INVALID_INPUT', `${options.data} cannot be read as a folder of videos: ${(error as Error).message}`, { file: options.data, cause: error });
  }

  const rows: VideoEvalRow[] = [];
  const skipped: string[] = [];
  for (const name of names) {
    const video = path.join(options.data, name);
    const labelsFile = labelsPathFor(video);
    const text = await readFile(labelsFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (text === undefined) {
      skipped.push(name);
      continue;
    }

    const { labels, kinds } = parseLabelsCsv(text, labelsFile);
    const { scores, seconds } = await scoreVideo(video, loaded);
    if (scores.length !== labels.length) {
      throw new DarkroomError('INVALID_INPUT', `${name} has ${scores.length} frames but ${path.basename(labelsFile)} labels ${labels.length}`, { file: video });
    }

    const aucByKind: Record<string, number> = {};
    for (const kind of orderKinds(kinds.filter((kind) => kind !== ''))) {
      // The frames of this kind's events against the normal frames, without other events' frames.
      const compared = scores.flatMap((score, i) => (kinds[i] === kind || labels[i] === 0 ? [[score, kinds[i] === kind ? 1 : 0] as const] : []));
      const auc = aucOrNull(
        compared.map(([score]) => score),
        compared.map(([, label]) => label),
      );
      if (auc !== null) aucByKind[kind] = auc;
    }
    const row: VideoEvalRow = {
      video: name,
      split: isTrainingVideo(loaded, name) ? 'train' : 'unseen',
      frames: scores.length,
      anomalousFrames: labels.reduce((sum, label) => sum + label, 0),
      auc: aucOrNull(scores, labels),
      aucByKind,
      msPerFrame: (seconds * 1000) / Math.max(1, scores.length),
    };
    log.info(`${name}: ${row.frames} frames, ${row.anomalousFrames} anomalous, ROC AUC ${row.auc?.toFixed(3) ?? 'n/a'}`);
    rows.push(row);
  }

  const withAuc = rows.flatMap((row) => (row.auc === null ? [] : [row.auc]));
  const meanAucByKind: Record<string, number> = {};
  for (const kind of orderKinds(rows.flatMap((row) => Object.keys(row.aucByKind)))) {
    meanAucByKind[kind] = mean(rows.flatMap((row) => (row.aucByKind[kind] === undefined ? [] : [row.aucByKind[kind]!])));
  }
  return { model: loaded.dir, rows, skipped, meanAuc: withAuc.length === 0 ? null : mean(withAuc), meanAucByKind };
}

/**
 * Renders the result as a table: one row per labelled video with its frames, anomalous frames,
 * ROC AUC and the AUC of each event kind, then the means, then the skipped videos.
 */
export function formatVideoAnomalyTable(result: VideoEvalResult): string {
  const kinds = Object.keys(result.meanAucByKind);
  const format = (value: number | null | undefined): string => (value === null || value === undefined ? '-' : value.toFixed(3));
  const header = ['video', 'split', 'frames', 'anomalous', 'ROC AUC', ...kinds, 'ms/frame'];
  const body = result.rows.map((row) => [
    row.video,
    row.split,
    String(row.frames),
    String(row.anomalousFrames),
    format(row.auc),
    ...kinds.map((kind) => format(row.aucByKind[kind])),
    row.msPerFrame.toFixed(2),
  ]);
  const footer = [['mean', '', '', '', format(result.meanAuc), ...kinds.map((kind) => format(result.meanAucByKind[kind])), '']];
  const title = `Frame-level ROC AUC of ${result.model}; per kind: that kind's frames against the normal frames`;
  const lines = [renderTable(title, header, body, footer)];
  if (result.skipped.length > 0) lines.push(`Skipped (no <name>.labels.csv): ${result.skipped.join(', ')}`);
  return lines.join('\n');
}
