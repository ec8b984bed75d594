/**
 * Video output: raw 8-bit grey or RGB frames piped into ffmpeg, which encodes them into a
 * temporary file that is renamed to the destination when the writer is closed.
 */
import { type ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { extname } from 'node:path';
import type { Readable, Writable } from 'node:stream';

import { DarkroomError, invalidOption } from '../errors.js';
import { createLogger } from '../log.js';
import { withAtomicOutput } from './atomic.js';
import { errorMessage, ffmpegFileUrl, type ProcessExit, requireBinary, spawnFailure, StderrLog, waitForExit } from './video-process.js';

const log = createLogger('media');

export interface WriteVideoOptions {
  /** Frame width in pixels. It must be even, because libx264 rejects odd sizes in yuv420p. */
  readonly width: number;
  /** Frame height in pixels, even for the same reason. */
  readonly height: number;
  /** Frames per second. */
  readonly fps: number;
  /** 1 for 8-bit grey frames, 3 for interleaved 8-bit RGB frames. */
  readonly channels: 1 | 3;
  /**
   * Quantiser of MPEG-4 Part 2, from 2 (best, largest) to 31. It applies to .avi, and to the
   * other containers when ffmpeg lacks libx264. Default 2.
   */
  readonly mpeg4Quantiser?: number;
  /** Container tags, e.g. { comment: '...' }, each written with -metadata key=value. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** The first audio stream of another file (the source video), muxed in beside the frames. */
  readonly audio?: AudioSource;
}

export interface AudioSource {
  readonly file: string;
  /** ffprobe's codec name of that stream, e.g. "aac" or "pcm_s16le". */
  readonly codec: string;
}

/**
 * Audio codecs that each container takes as they are, so the stream is copied without a
 * generation loss. Others are re-encoded: AAC for MP4 and QuickTime, PCM for AVI.
 */
const AUDIO_COPY: Readonly<Record<string, { readonly copies: ReadonlySet<string> | 'all'; readonly fallback: string[] }>> = {
  mp4: { copies: new Set(['aac', 'mp3', 'ac3', 'eac3', 'alac']), fallback: ['-c:a', 'aac', '-b:a', '192k'] },
  mov: { copies: new Set(['aac', 'mp3', 'ac3', 'eac3', 'alac', 'pcm_s16le', 'pcm_s24le']), fallback: ['-c:a', 'aac', '-b:a', '192k'] },
  avi: { copies: new Set(['mp3', 'mp2', 'ac3', 'pcm_s16le', 'pcm_u8']), fallback: ['-c:a', 'pcm_s16le'] },
  matroska: { copies: 'all', fallback: ['-c:a', 'copy'] },
};

/** The arguments that map and copy (or re-encode) `audio` into `muxer`'s container. */
export function audioArguments(muxer: string, audio: AudioSource): string[] {
  const rule = AUDIO_COPY[muxer] ?? AUDIO_COPY.matroska;
  const copies = rule.copies === 'all' || rule.copies.has(audio.codec);
  return ['-map', '0:v:0', '-map', '1:a:0', ...(copies ? ['-c:a', 'copy'] : rule.fallback)];
}

export interface VideoWriter {
  /**
   * Sends one frame of width * height * channels bytes to ffmpeg. Resolves once the pipe has
   * taken all of it, so the caller may then reuse the buffer, and a caller that awaits each
   * write never has more than one frame in flight. Rejects with DarkroomError when ffmpeg has failed.
   */
  write(frame: Uint8Array): Promise<void>;
  /** Finishes the encode and moves the video to its destination. Rejects with ffmpeg's error when the encode failed. */
  close(): Promise<void>;
  /** Stops ffmpeg and removes the temporary file, so the destination keeps its previous content or stays absent. */
  abort(): Promise<void>;
}

interface Container {
  readonly muxer: string;
  /**
   * Whether H.264 is preferred. AVI gets MPEG-4 Part 2 (the Xvid and DivX codec), because AVI
   * has no per-frame timestamps, which H.264 with B-frames needs.
   */
  readonly prefersH264: boolean;
}

const CONTAINERS: Readonly<Record<string, Container>> = {
  '.mp4': { muxer: 'mp4', prefersH264: true },
  '.m4v': { muxer: 'mp4', prefersH264: true },
  '.mov': { muxer: 'mov', prefersH264: true },
  '.mkv': { muxer: 'matroska', prefersH264: true },
  '.avi': { muxer: 'avi', prefersH264: false },
};

/** Thrown inside the encode when abort() stops it, so that withAtomicOutput removes the temporary file. */
class EncodeAborted extends Error {}

/**
 * Starts ffmpeg to encode frames into `file`: H.264 (libx264, CRF 18) for .mp4, .m4v, .mov and
 * .mkv when the ffmpeg build has libx264, otherwise MPEG-4 Part 2 at `mpeg4Quantiser`. The output
 * appears at `file` only after close() succeeds. Call close() or abort() in every case, because
 * ffmpeg waits for more frames until one of them is called.
 */
export async function writeVideo(file: string, options: WriteVideoOptions): Promise<VideoWriter> {
  const { width, height, fps, channels } = options;
  for (const [name, value] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(value) || value <= 0 || value % 2 !== 0) throw invalidOption('an even positive integer', name, value);
  }
  if (!Number.isFinite(fps) || fps <= 0) throw invalidOption('a positive number', 'fps', fps);
  if (channels !== 1 && channels !== 3) throw invalidOption('1 (grey) or 3 (RGB)', 'channels', channels);
  const quantiser = options.mpeg4Quantiser ?? 2;
  if (!Number.isInteger(quantiser) || quantiser < 2 || quantiser > 31) throw invalidOption('an integer from 2 to 31', 'mpeg4Quantiser', quantiser);

  const container = CONTAINERS[extname(file).toLowerCase()];
  if (container === undefined) {
    throw new DarkroomError('UNSUPPORTED_FORMAT', `Cannot write ${file}: darkroom writes video as .mp4, .m4v, .mov, .mkv or .avi`, { file });
  }

  const ffmpeg = requireBinary('ffmpeg');
  const encoders = await listEncoders(ffmpeg);
  const codecArguments = chooseCodec(container, encoders, ffmpeg, quantiser);
  const input = ['-f', 'rawvideo', '-pix_fmt', channels === 1 ? 'gray' : 'rgb24', '-s', `${width}x${height}`, '-r', String(fps), '-i', 'pipe:0'];
  const audio = options.audio === undefined ? [] : ['-i', ffmpegFileUrl(options.audio.file), ...audioArguments(container.muxer, options.audio)];
  const tags = Object.entries(options.metadata ?? {}).flatMap(([key, value]) => ['-metadata', `${key}=${value}`]);

  const encoding = new Encoding(file, ffmpeg, width * height * channels);
  await encoding.start((temporaryPath) => [
    '-v', 'error', '-nostdin',
    ...input,
    ...audio,
    ...codecArguments,
    ...tags,
    '-f', container.muxer,
    ffmpegFileUrl(temporaryPath),
  ]);
  return encoding;
}

function chooseCodec(container: Container, encoders: ReadonlySet<string>, ffmpeg: string, quantiser: number): string[] {
  if (container.prefersH264 && encoders.has('libx264')) {
    const faststart = container.muxer === 'mp4' || container.muxer === 'mov' ? ['-movflags', '+faststart'] : [];
    return ['-c:v', 'libx264', '-preset', 'medium', '-crf', '18', '-pix_fmt', 'yuv420p', ...faststart];
  }
  if (encoders.has('mpeg4')) return ['-c:v', 'mpeg4', '-q:v', String(quantiser), '-pix_fmt', 'yuv420p'];

  throw new DarkroomError('BACKEND_UNAVAILABLE', `ffmpeg at ${ffmpeg} has neither the libx264 nor the mpeg4 encoder. Install a full ffmpeg build or set FFMPEG_PATH to one.`);
}

const encoderCache = new Map<string, Promise<ReadonlySet<string>>>();

/** Lists the encoder names of an ffmpeg binary, once per binary. */
function listEncoders(ffmpeg: string): Promise<ReadonlySet<string>> {
  let encoders = encoderCache.get(ffmpeg);
  if (encoders === undefined) {
    encoders = new Promise((resolve, reject) => {
      execFile(ffmpeg, ['-hide_banner', '-encoders'], { encoding: 'utf8', maxBuffer: 4 * 1024 * 1024 }, (error, stdout) => {
        if (error !== null) {
          reject(spawnFailure('ffmpeg', ffmpeg, error));
          return;
        }
        // Encoder lines look like " V..... libx264   libx264 H.264 / AVC ...": six flag characters, then the name.
        const names = [...stdout.matchAll(/^ [A-Z.]{6} (\S+)/gm)].map((match) => match[1]);
        resolve(new Set(names));
      });
    });
    encoderCache.set(ffmpeg, encoders);
    encoders.catch(() => encoderCache.delete(ffmpeg));
  }
  return encoders;
}

type EncoderProcess = ChildProcessByStdio<Writable, null, Readable>;

class Encoding implements VideoWriter {
  private state: 'open' | 'closing' | 'closed' | 'aborted' = 'open';
  private child: EncoderProcess | undefined;
  private finished: Promise<void> | undefined;
  private readonly stderr: StderrLog;
  private markStarted!: () => void;
  private readonly started = new Promise<void>((resolve) => {
    this.markStarted = resolve;
  });

  constructor(
    private readonly file: string,
    private readonly ffmpeg: string,
    private readonly frameBytes: number,
  ) {
    this.stderr = new StderrLog(file);
  }

  /** Spawns ffmpeg. Resolves once it runs, or rejects if the encode failed before that. */
  start(buildArguments: (temporaryPath: string) => string[]): Promise<void> {
    this.finished = withAtomicOutput(this.file, async (temporaryPath) => {
      const args = buildArguments(temporaryPath);
      log.debug(`encoding ${this.file}: ffmpeg ${args.join(' ')}`);
      const child = spawn(this.ffmpeg, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      child.stderr.on('data', (chunk: Buffer) => this.stderr.append(chunk));
      // EPIPE arrives here when ffmpeg exits early. Its exit code and stderr explain why, in write() and close().
      child.stdin.on('error', (error) => log.debug(`ffmpeg's input pipe for ${this.file} failed: ${errorMessage(error)}`));
      this.child = child;
      const exited = waitForExit(child);
      this.markStarted();

      const exit = await exited;
      this.stderr.finish();
      if (this.state === 'aborted') throw new EncodeAborted();
      if (exit.spawnError !== undefined) throw spawnFailure('ffmpeg', this.ffmpeg, exit.spawnError);
      if (exit.exitCode !== 0) throw this.encodeFailure(exit);
    });

    // close() and write() report the failure. Without this handler, a failed writer that is never closed would crash the process.
    this.finished.catch(() => undefined);
    return Promise.race([this.started, this.finished]);
  }

  async write(frame: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new DarkroomError('INTERNAL', `Cannot write a frame to ${this.file} after close() or abort()`, { file: this.file });
    if (!(frame instanceof Uint8Array) || frame.length !== this.frameBytes) {
      throw invalidOption(`a Uint8Array of ${this.frameBytes} bytes (width * height * channels)`, 'frame.length', frame?.length);
    }

    const stdin = (this.child as EncoderProcess).stdin;
    try {
      // The callback runs once the pipe has taken the whole frame, which includes waiting for 'drain'.
      await new Promise<void>((resolve, reject) => {
        stdin.write(frame, (error) => (error == null ? resolve() : reject(error)));
      });
    } catch (error) {
      const failure = await (this.finished as Promise<void>).then(
        () => undefined,
        (encodeError: unknown) => encodeError,
      );
      if (failure instanceof EncodeAborted) throw new DarkroomError('INTERNAL', `Writing ${this.file} was aborted`, { file: this.file });
      throw failure ?? new DarkroomError('INTERNAL', `Cannot send a frame to ffmpeg for ${this.file}: ${errorMessage(error)}`, { file: this.file, cause: error });
    }
  }

  async close(): Promise<void> {
    if (this.state === 'open') {
      this.state = 'closing';
      (this.child as EncoderProcess).stdin.end();
    }

    try {
      await this.finished;
    } catch (error) {
      if (error instanceof EncodeAborted) throw new DarkroomError('INTERNAL', `Writing ${this.file} was aborted before close() finished`, { file: this.file });
      throw error;
    }
    if (this.state === 'closing') this.state = 'closed';
  }

  async abort(): Promise<void> {
    if (this.state === 'closed' || this.state === 'aborted') return;
    this.state = 'aborted';

    const child = this.child as EncoderProcess;
    child.stdin.destroy();
    child.kill('SIGKILL');
    await (this.finished as Promise<void>).catch(() => undefined);
  }

  private encodeFailure(exit: ProcessExit): DarkroomError {
    const status = exit.exitCode === null ? `was killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
    const reason = this.stderr.lastMessage === undefined ? '' : ` (${this.stderr.lastMessage})`;
    return new DarkroomError('INTERNAL', `ffmpeg failed to encode ${this.file}: it ${status}${reason}`, { file: this.file });
  }
}
