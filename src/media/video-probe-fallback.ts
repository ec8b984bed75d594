/**
 * A second way to describe a video, from the header that `ffmpeg -i FILE` prints on stderr, for
 * files that crash ffprobe. Only the fields that darkroom reads are parsed.
 */
import { execFile } from 'node:child_process';

import { ffmpegFileUrl, requireBinary } from './video-process.js';

export interface FfmpegDescription {
  /** The demuxer name, e.g. "mpegts". */
  readonly format: string;
  /** Seconds, as a decimal string in the form ffprobe uses; undefined when ffmpeg shows N/A. */
  readonly duration: string | undefined;
  readonly video?: { readonly codec: string; readonly width: number; readonly height: number; readonly fps: string | undefined };
  readonly audioCodec?: string;
}

const TIMEOUT_MS = 60_000;

/** Runs `ffmpeg -i FILE` without an output and parses what it prints; undefined when it names no input. */
export async function describeWithFfmpeg(file: string): Promise<FfmpegDescription | undefined> {
  const ffmpeg = requireBinary('ffmpeg');
  // With an input and no output ffmpeg prints the input's description and exits with 1.
  const stderr = await new Promise<string>((resolve) => {
    execFile(ffmpeg, ['-hide_banner', '-i', ffmpegFileUrl(file)], { timeout: TIMEOUT_MS, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (_error, _stdout, text) => resolve(text ?? ''));
  });
  return parseFfmpegDescription(stderr);
}

/** Parses the "Input #0, ..." block of ffmpeg's stderr. */
export function parseFfmpegDescription(stderr: string): FfmpegDescription | undefined {
  const input = /^Input #0, ([^,]+(?:,[^,\s']+)*), from /m.exec(stderr);
  if (input === null) return undefined;

  const seconds = parseClock(/Duration: ([\d:.]+)/.exec(stderr)?.[1]);
  const duration = seconds === undefined ? undefined : String(seconds);

  let video: FfmpegDescription['video'];
  const videoLine = /Stream #0:\d+\S*: Video: (\w+).*$/m.exec(stderr);
  if (videoLine !== null) {
    // The frame size is the first WxH after the pixel format, e.g. "yuv420p(tv), 128x96 [SAR 1:1 DAR 4:3]".
    const size = /, (\d+)x(\d+)[ ,]/.exec(videoLine[0]);
    const rate = /, ([\d.]+(?:k)?) (?:fps|tbr)/.exec(videoLine[0]);
    if (size !== null) video = { codec: videoLine[1], width: Number(size[1]), height: Number(size[2]), fps: rate === null ? undefined : rate[1].replace(/k$/, '000') };
  }

  const audio = /Stream #0:\d+\S*: Audio: (\w+)/.exec(stderr);
  return { format: input[1], duration, ...(video === undefined ? {} : { video }), ...(audio === null ? {} : { audioCodec: audio[1] }) };
}

/** Parses a clock time such as "00:01:02.500000000" into seconds; undefined for anything else. */
export function parseClock(text: string | undefined): number | undefined {
  const match = text === undefined ? null : /^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(text.trim());
  if (match === null) return undefined;
  return Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3]);
}
