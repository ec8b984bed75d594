/**
 * Video probing with ffprobe.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';

import { DarkroomError } from '../errors.js';
import { cleanStderr, errorMessage, ffmpegFileUrl, requireBinary, spawnFailure } from './video-process.js';
import { describeWithFfmpeg, parseClock } from './video-probe-fallback.js';

/** Properties of a video's first video stream, as ffprobe reports them. */
export interface VideoInfo {
  readonly width: number;
  readonly height: number;
  /** Frames per second: the stream's average frame rate, or its base frame rate when the average is unknown. */
  readonly fps: number;
  /** Duration of the video stream, or of the whole file when the stream has none. */
  readonly durationSeconds: number | undefined;
  /**
   * Number of frames: the count stored in the container (AVI and MP4 store one), otherwise
   * the estimate round(durationSeconds * fps).
   */
  readonly frameCount: number | undefined;
  /** Whether frameCount is the container's count, or an estimate from the duration that may be a frame off. */
  readonly frameCountExact: boolean;
  /** ffprobe's codec name, e.g. "h264" or "mpeg4". */
  readonly codec: string;
  /** ffprobe's container format name, e.g. "avi" or "mov,mp4,m4a,3gp,3g2,mj2". */
  readonly format: string;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
  nb_frames?: string;
  disposition?: { attached_pic?: number };
  /** Matroska and WebM give a stream's duration only as a tag, e.g. DURATION "00:00:02.002000000". */
  tags?: { DURATION?: string };
}

interface ProbeOutput {
  streams?: ProbeStream[];
  format?: { format_name?: string; duration?: string };
}

const PROBE_TIMEOUT_MS = 60_000;

/**
 * Probes `file` with ffprobe and describes its first video stream.
 * Raises DarkroomError with `file` set: INVALID_INPUT when the file is missing, unreadable or
 * empty, UNSUPPORTED_FORMAT when it is not a video (text, audio only, a still image), and
 * BACKEND_UNAVAILABLE when ffprobe cannot be found or started.
 */
export async function probeVideo(file: string): Promise<VideoInfo> {
  await checkReadableFile(file);
  const ffprobe = requireBinary('ffprobe');

  const result = await runFfprobe(ffprobe, file);
  if (result.signal !== null) return probeAfterCrash(file, ffprobe, result.signal);
  if (result.exitCode !== 0) {
    const reason = cleanStderr(result.stderr, file).join('; ') || `ffprobe exited with code ${result.exitCode}`;
    throw new DarkroomError('UNSUPPORTED_FORMAT', `${file} is not a video: ffprobe cannot read it (${reason})`, { file });
  }

  const output = JSON.parse(result.stdout) as ProbeOutput;
  const streams = output.streams ?? [];
  const formatName = output.format?.format_name ?? '';

  // A cover picture in an audio file is a video stream with the attached_pic disposition.
  const stream = streams.find((candidate) => candidate.codec_type === 'video' && candidate.disposition?.attached_pic !== 1);
  if (stream === undefined) {
    const types = streams.map((candidate) => candidate.codec_type ?? 'unknown');
    const found = types.length === 0 ? '' : ` (streams: ${[...new Set(types)].join(', ')})`;
    throw new DarkroomError('UNSUPPORTED_FORMAT', `${file} is not a video: ffprobe found no video stream${found}`, { file });
  }

  // ffmpeg opens a single PNG or JPEG as a one-frame video, through the image2 demuxer or one of the *_pipe demuxers.
  if (formatName === 'image2' || formatName.endsWith('_pipe')) {
    const imageType = formatName.endsWith('_pipe') ? formatName.slice(0, -'_pipe'.length) : (stream.codec_name ?? 'unknown');
    throw new DarkroomError('UNSUPPORTED_FORMAT', `${file} is an image (${imageType}), not a video`, { file });
  }

  return describeStream(file, stream, formatName, output.format?.duration);
}

function describeStream(file: string, stream: ProbeStream, formatName: string, formatDuration: string | undefined): VideoInfo {
  const { width, height } = stream;
  if (!isPositiveInteger(width) || !isPositiveInteger(height)) {
    throw new DarkroomError('UNSUPPORTED_FORMAT', `${file} is not a video: ffprobe reports no frame size for its video stream`, { file });
  }

  const fps = parseFrameRate(stream.avg_frame_rate) ?? parseFrameRate(stream.r_frame_rate);
  if (fps === undefined) {
    throw new DarkroomError('UNSUPPORTED_FORMAT', `${file} is not a video: ffprobe reports no frame rate for its video stream`, { file });
  }

  // The file's duration runs to the end of its longest stream, which may be the audio.
  const durationSeconds = parseSeconds(stream.duration) ?? parseClock(stream.tags?.DURATION) ?? parseSeconds(formatDuration);
  const storedCount = stream.nb_frames === undefined ? undefined : Number(stream.nb_frames);
  let frameCount: number | undefined;
  if (isPositiveInteger(storedCount)) frameCount = storedCount;
  else if (durationSeconds !== undefined) frameCount = Math.round(durationSeconds * fps);

  return Object.freeze({ width, height, fps, durationSeconds, frameCount, frameCountExact: isPositiveInteger(storedCount), codec: stream.codec_name ?? 'unknown', format: formatName });
}

/** Parses an ffprobe rational such as "30000/1001" or "25". Returns undefined for "0/0" and other unknown rates. */
export function parseFrameRate(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;

  const [numerator, denominator = '1'] = text.split('/');
  const rate = Number(numerator) / Number(denominator);
  return Number.isFinite(rate) && rate > 0 ? rate : undefined;
}

function parseSeconds(text: string | undefined): number | undefined {
  const seconds = text === undefined ? NaN : Number(text);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

async function checkReadableFile(file: string): Promise<void> {
  try {
    const stats = await stat(file);
    if (stats.isDirectory()) throw new DarkroomError('INVALID_INPUT', `${file} cannot be read: it is a directory`, { file });
    if (stats.size === 0) throw new DarkroomError('INVALID_INPUT', `${file} is empty (0 bytes)`, { file });
    await access(file, constants.R_OK);
  } catch (error) {
    if (error instanceof DarkroomError) throw error;

    const code = (error as NodeJS.ErrnoException).code;
    let reason = errorMessage(error);
    if (code === 'ENOENT') reason = 'the file does not exist';
    if (code === 'EACCES') reason = 'permission denied';
    throw new DarkroomError('INVALID_INPUT', `${file} cannot be read: ${reason}`, { file, cause: error });
  }
}

interface CompletedProcess {
  readonly exitCode: number | null;
  /** The signal that killed the process (SIGSEGV for a crash), or null when it exited. */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Counts the video packets of size 0. AVI marks a frame that repeats the previous one with an
 * empty chunk: the container counts it, but it contains nothing to decode, so it is not lost.
 * Reads packet headers only, without decoding.
 */
export async function countEmptyVideoPackets(file: string): Promise<number> {
  const ffprobe = requireBinary('ffprobe');
  const result = await runFfprobe(ffprobe, file, ['-select_streams', 'v:0', '-show_entries', 'packet=size', '-of', 'csv=p=0']);
  if (result.exitCode !== 0) return 0;
  return result.stdout.split('\n').filter((line) => line.trim() === '0').length;
}

/** ffprobe's codec name of the first audio stream of `file`, or undefined when it has none. */
export async function probeAudioCodec(file: string): Promise<string | undefined> {
  const ffprobe = requireBinary('ffprobe');
  const result = await runFfprobe(ffprobe, file, ['-select_streams', 'a:0', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0']);
  if (result.signal !== null) return (await describeWithFfmpeg(file))?.audioCodec;
  const codec = result.exitCode === 0 ? result.stdout.trim().split('\n')[0]?.trim() : '';
  return codec === undefined || codec === '' ? undefined : codec;
}

async function runFfprobe(binary: string, file: string, entries: readonly string[] = ['-print_format', 'json', '-show_format', '-show_streams']): Promise<CompletedProcess> {
  const args = ['-v', 'error', ...entries, ffmpegFileUrl(file)];

  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: PROBE_TIMEOUT_MS, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ exitCode: 0, signal: null, stdout, stderr });
        return;
      }

      // execFile sets a numeric code for a non-zero exit, a null code for a signal and an errno string for a failed spawn.
      if (error.killed === true) {
        reject(new DarkroomError('INVALID_INPUT', `${file} cannot be read: ffprobe timed out after ${PROBE_TIMEOUT_MS / 1000} s`, { file }));
      } else if (typeof error.code === 'number' || error.signal != null) {
        resolve({ exitCode: typeof error.code === 'number' ? error.code : null, signal: (error.signal as NodeJS.Signals | undefined) ?? null, stdout, stderr });
      } else {
        reject(spawnFailure('ffprobe', binary, error));
      }
    });
  });
}

/**
 * Describes a file that crashed ffprobe. The static ffprobe that @ffprobe-installer ships dies
 * with SIGSEGV on MPEG-TS files, while ffmpeg reads them, so ffmpeg's own description of its
 * input is used instead.
 */
async function probeAfterCrash(file: string, ffprobe: string, signal: NodeJS.Signals): Promise<VideoInfo> {
  const described = await describeWithFfmpeg(file);
  if (described?.video === undefined) {
    throw new DarkroomError(
      'UNSUPPORTED_FORMAT',
      `${file} could not be probed: ffprobe (${ffprobe}) crashed with ${signal}, and ffmpeg found no video stream in it; set FFPROBE_PATH to another ffprobe build to try again`,
      { file },
    );
  }
  const { video } = described;
  return describeStream(file, { codec_type: 'video', codec_name: video.codec, width: video.width, height: video.height, avg_frame_rate: video.fps }, described.format, described.duration);
}
