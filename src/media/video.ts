/**
 * Video input: frames decoded by ffmpeg, scaled and converted to 8-bit grey or RGB, read one
 * at a time from its stdout.
 *
 * Memory stays flat however long the video. The reader takes the next chunk from stdout's
 * async iterator only when the consumer requests the next frame, so a slow consumer fills the
 * stream buffer and the pipe, and ffmpeg then blocks in write(2).
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

import { DarkroomError, invalidOption } from '../errors.js';
import { createLogger } from '../log.js';
import { probeVideo, type VideoInfo } from './video-probe.js';
import { ffmpegFileUrl, isRunning, type ProcessExit, requireBinary, spawnFailure, StderrLog, waitForExit } from './video-process.js';

export { countEmptyVideoPackets, parseFrameRate, probeVideo, type VideoInfo } from './video-probe.js';
export { type VideoWriter, writeVideo, type WriteVideoOptions } from './video-write.js';

const log = createLogger('media');

export interface ReadFramesOptions {
  /** Width of the frames in pixels, the video's width by default. ffmpeg scales with area averaging. */
  readonly width?: number;
  /** Height of the frames in pixels, the video's height by default. */
  readonly height?: number;
  /** 1 for 8-bit grey (full-range luma), 3 for interleaved 8-bit RGB. */
  readonly channels: 1 | 3;
  /**
   * Frame rate to resample to with ffmpeg's fps filter, which drops or repeats frames.
   * By default every decoded frame is returned at the video's own rate.
   */
  readonly fps?: number;
  /** Index of the first frame to return, e.g. to resume a scan. Frame indices count from 0 at the start of the video. */
  readonly startFrame?: number;
  /** Maximum number of frames to return. */
  readonly maxFrames?: number;
}

export interface VideoFrame {
  /** Position of the frame in the video (after fps resampling), counting from 0 and including skipped frames. */
  readonly index: number;
  /** index / fps, in seconds. */
  readonly timeSeconds: number;
  /** width * height * channels bytes, row-major. Each frame owns its buffer. */
  readonly data: Uint8Array;
}

/**
 * Outcome of a read. 'partial' means that ffmpeg failed or reported errors, or that fewer
 * frames came out than expected. 'stopped' means that the consumer ended the iteration early.
 * Without a frame count in the container (WebM, MPEG-TS), expectedFrames is an estimate from
 * the duration, so one frame short of it still counts as complete.
 */
export interface DecodeSummary {
  readonly status: 'complete' | 'partial' | 'stopped';
  readonly framesDecoded: number;
  /**
   * Frames that the read should return: the container's frame count or the estimate from
   * duration * fps, less startFrame and at most maxFrames. Undefined when the video has neither.
   */
  readonly expectedFrames: number | undefined;
  /** expectedFrames - framesDecoded, at least 0. Undefined when expectedFrames is, or when the consumer stopped early. */
  readonly framesLost: number | undefined;
  /** Number of error lines that ffmpeg printed. */
  readonly decodeErrors: number;
  /** The first few error lines, without ffmpeg's context addresses. */
  readonly errorMessages: readonly string[];
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface FrameReader extends AsyncIterable<VideoFrame> {
  /**
   * Resolves once the iteration has ended and ffmpeg has exited, and rejects with the error that
   * ended the iteration. It stays pending until the reader has been iterated.
   */
  summary(): Promise<DecodeSummary>;
  /**
   * Bytes read from ffmpeg that have not been returned as frames yet: the stream's buffer, the
   * rest of the current chunk and a partly filled frame. The stream stops reading the pipe at
   * its highWaterMark, so this stays below frameBytes + 2 * (highWaterMark + 64 KiB).
   */
  readonly bufferedBytes: number;
}

interface ResolvedReadOptions {
  readonly width?: number;
  readonly height?: number;
  readonly channels: 1 | 3;
  readonly fps?: number;
  readonly startFrame: number;
  readonly maxFrames?: number;
}

/**
 * Decodes the frames of `file` with ffmpeg. The reader can be iterated once, and breaking out
 * of the loop kills ffmpeg. A consumer that stops calling next() without break or return()
 * leaves ffmpeg blocked on the full pipe.
 * A video that ffmpeg decodes only in part returns the frames before the damage, and summary()
 * reports the loss. Iteration raises DarkroomError when the file is not a readable video (see
 * probeVideo), when ffmpeg cannot be started, and when ffmpeg fails before the first frame.
 */
export function readFrames(file: string, options: ReadFramesOptions): FrameReader {
  return new FfmpegFrameReader(file, resolveReadOptions(options));
}

function resolveReadOptions(options: ReadFramesOptions): ResolvedReadOptions {
  const { width, height, channels, fps, startFrame = 0, maxFrames } = options;

  for (const [name, value] of [['width', width], ['height', height], ['maxFrames', maxFrames]] as const) {
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) throw invalidOption('a positive integer', name, value);
  }
  if (channels !== 1 && channels !== 3) throw invalidOption('1 (grey) or 3 (RGB)', 'channels', channels);
  if (fps !== undefined && !(Number.isFinite(fps) && fps > 0)) throw invalidOption('a positive number', 'fps', fps);
  if (!Number.isInteger(startFrame) || startFrame < 0) throw invalidOption('a non-negative integer', 'startFrame', startFrame);

  return { width, height, channels, fps, startFrame, maxFrames };
}

class FfmpegFrameReader implements FrameReader {
  private iterated = false;
  private heldBytes = 0;
  private stdout: Readable | undefined;
  private readonly summaryPromise: Promise<DecodeSummary>;
  private settleSummary!: { resolve: (summary: DecodeSummary) => void; reject: (error: unknown) => void };

  constructor(
    private readonly file: string,
    private readonly options: ResolvedReadOptions,
  ) {
    this.summaryPromise = new Promise((resolve, reject) => {
      this.settleSummary = { resolve, reject };
    });
    // The iteration raises the same error, so a caller that never calls summary() has not missed it.
    this.summaryPromise.catch(() => undefined);
  }

  get bufferedBytes(): number {
    return this.heldBytes + (this.stdout?.readableLength ?? 0);
  }

  summary(): Promise<DecodeSummary> {
    return this.summaryPromise;
  }

  [Symbol.asyncIterator](): AsyncIterator<VideoFrame> {
    if (this.iterated) throw new DarkroomError('INTERNAL', `The frames of ${this.file} can be iterated only once; call readFrames again`);
    this.iterated = true;

    return this.decode();
  }

  private async *decode(): AsyncGenerator<VideoFrame> {
    try {
      const summary = yield* this.decodeFrames();
      this.settleSummary.resolve(summary);
    } catch (error) {
      this.settleSummary.reject(error);
      throw error;
    }
  }

  private async *decodeFrames(): AsyncGenerator<VideoFrame, DecodeSummary> {
    const { file, options } = this;
    const info = await probeVideo(file);
    const ffmpeg = requireBinary('ffmpeg');

    const width = options.width ?? info.width;
    const height = options.height ?? info.height;
    const frameBytes = width * height * options.channels;
    const fps = options.fps ?? info.fps;
    const args = decodeArguments(file, width, height, options);
    log.debug(`decoding ${file}: ${ffmpeg} ${args.join(' ')}`);

    const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr = new StderrLog(file);
    child.stderr.on('data', (chunk: Buffer) => stderr.append(chunk));
    const exited = waitForExit(child);
    this.stdout = child.stdout;

    let framesDecoded = 0;
    let filled = 0;
    // Still true in the finally block when the consumer ended the iteration at the yield.
    let waitingForConsumer = false;
    const chunks = (child.stdout as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    try {
      let frame = new Uint8Array(frameBytes);
      for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) {
        // One chunk may hold several small frames, or a small part of one large frame.
        const chunk = next.value;
        let offset = 0;
        while (offset < chunk.length) {
          const count = Math.min(frameBytes - filled, chunk.length - offset);
          frame.set(chunk.subarray(offset, offset + count), filled);
          filled += count;
          offset += count;
          this.heldBytes = chunk.length - offset + filled;
          if (filled < frameBytes) continue;

          const index = options.startFrame + framesDecoded;
          framesDecoded++;
          waitingForConsumer = true;
          yield { index, timeSeconds: index / fps, data: frame };
          waitingForConsumer = false;

          frame = new Uint8Array(frameBytes);
          filled = 0;
          this.heldBytes = chunk.length - offset;
        }
      }
    } finally {
      // ffmpeg is killed before stdout is destroyed. In the other order its write fails with EPIPE
      // and it exits with an error of its own, which a summary of a stopped read should not contain.
      if (isRunning(child)) child.kill('SIGKILL');
      await chunks.return?.();
      this.heldBytes = 0;
      this.stdout = undefined;
      if (waitingForConsumer) {
        const exit = await exited;
        this.settleSummary.resolve(summarize('stopped', info, options, framesDecoded, stderr, exit));
      }
    }

    const exit = await exited;
    stderr.finish();
    if (exit.spawnError !== undefined) throw spawnFailure('ffmpeg', ffmpeg, exit.spawnError);
    if (filled > 0) stderr.addMessage(`ffmpeg's output ended ${filled} bytes into frame ${options.startFrame + framesDecoded}`);

    if (exit.exitCode !== 0 && framesDecoded === 0) {
      const reason = stderr.lastMessage ?? 'no error message';
      const status = exit.exitCode === null ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
      throw new DarkroomError('INVALID_INPUT', `${file} cannot be decoded: ffmpeg ${status} (${reason})`, { file });
    }

    const summary = summarize('finished', info, options, framesDecoded, stderr, exit);
    log.debug(`decoded ${file}: ${summary.status}, ${framesDecoded} frames, ${summary.decodeErrors} errors`);
    return summary;
  }
}

function decodeArguments(file: string, width: number, height: number, options: ResolvedReadOptions): string[] {
  const pixelFormat = options.channels === 1 ? 'gray' : 'rgb24';

  // The fps filter and trim come before scale, so that dropped and skipped frames are never scaled.
  // trim counts frames at its input, which is the output of fps, so startFrame refers to resampled frames.
  const filters: string[] = [];
  if (options.fps !== undefined) filters.push(`fps=${options.fps}`);
  if (options.startFrame > 0) filters.push(`trim=start_frame=${options.startFrame}`);
  filters.push(`scale=${width}:${height}:flags=area`, `format=${pixelFormat}`);

  const limit = options.maxFrames === undefined ? [] : ['-frames:v', String(options.maxFrames)];

  // -vsync passthrough keeps one output frame per decoded frame. By default the rawvideo muxer
  // gets constant-frame-rate output, which repeats or drops frames where timestamps are uneven
  // (the 2018 build of @ffmpeg-installer/ffmpeg made 271 frames of a 270-frame AVI).
  // NOTE: ffmpeg 5.1 added -fps_mode and deprecated -vsync. Only the 2018 build was run here.
  return [
    '-v', 'error', '-nostdin',
    '-i', ffmpegFileUrl(file),
    '-an', '-sn', '-dn',
    '-vf', filters.join(','),
    '-vsync', 'passthrough',
    ...limit,
    '-f', 'rawvideo', '-pix_fmt', pixelFormat,
    'pipe:1',
  ];
}

function summarize(
  ending: 'stopped' | 'finished',
  info: VideoInfo,
  options: ResolvedReadOptions,
  framesDecoded: number,
  stderr: StderrLog,
  exit: ProcessExit,
): DecodeSummary {
  const expectedFrames = expectedFrameCount(info, options);
  const shortfall = ending === 'stopped' || expectedFrames === undefined ? undefined : Math.max(0, expectedFrames - framesDecoded);
  // A duration rounded to the millisecond, times the frame rate, can round to one frame more than the stream has.
  const tolerance = info.frameCountExact && options.fps === undefined ? 0 : 1;
  const framesLost = shortfall === undefined || shortfall > tolerance ? shortfall : 0;
  let status: DecodeSummary['status'] = 'complete';
  if (exit.exitCode !== 0 || stderr.errorCount > 0 || (framesLost ?? 0) > 0) status = 'partial';
  if (ending === 'stopped') status = 'stopped';

  return Object.freeze({
    status,
    framesDecoded,
    expectedFrames,
    framesLost,
    decodeErrors: stderr.errorCount,
    errorMessages: stderr.firstMessages,
    exitCode: exit.exitCode,
    signal: exit.signal,
  });
}

function expectedFrameCount(info: VideoInfo, options: ResolvedReadOptions): number | undefined {
  let total = info.frameCount;
  if (options.fps !== undefined) total = info.durationSeconds === undefined ? undefined : Math.round(info.durationSeconds * options.fps);
  if (total === undefined) return undefined;

  const remaining = Math.max(0, total - options.startFrame);
  return options.maxFrames === undefined ? remaining : Math.min(remaining, options.maxFrames);
}
