import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getDefaultHighWaterMark } from 'node:stream';
import { promisify } from 'node:util';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { DarkroomError } from '../src/errors.js';
import { locateBinary } from '../src/media/ffmpeg.js';
import { parseFfmpegDescription } from '../src/media/video-probe-fallback.js';
import { parseFrameRate, probeVideo, readFrames, type VideoFrame, writeVideo } from '../src/media/video.js';

const run = promisify(execFile);

let directory: string;
let ffmpeg: string;
/** 64x48, 10 fps, 30 frames of mpeg4 in AVI. Frame n is flat grey at level 8 * n. */
let ramp: string;
/** 320x240, 10 fps, 30 frames of testsrc: 230 400 bytes per RGB frame, 6.9 MB in all. */
let large: string;
/** 64x48, 10 fps, 30 frames of testsrc in AVI, whose bytes the corruption tests damage. */
let pattern: string;

async function generate(file: string, source: string, codec: string[] = ['-c:v', 'mpeg4', '-q:v', '2']): Promise<string> {
  const path = join(directory, file);
  await run(ffmpeg, ['-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', source, ...codec, path]);
  return path;
}

async function collect(frames: AsyncIterable<VideoFrame>): Promise<VideoFrame[]> {
  const all: VideoFrame[] = [];
  for await (const frame of frames) all.push(frame);
  return all;
}

function mean(data: Uint8Array): number {
  return data.reduce((sum, value) => sum + value, 0) / data.length;
}

/**
 * Writes a stand-in for ffmpeg that prints a version and an encoder list, and otherwise writes
 * $STUB_BYTES zero bytes to stdout, an error line to stderr and exits with code 1.
 */
async function writeFailingFfmpeg(): Promise<string> {
  const path = join(directory, 'bin', 'ffmpeg');
  await mkdir(join(directory, 'bin'), { recursive: true });
  await writeFile(
    path,
    `#!/bin/sh
case "$*" in
  *-version*) echo "ffmpeg version stub"; exit 0 ;;
  *-encoders*) echo " V..... mpeg4                MPEG-4 part 2"; exit 0 ;;
esac
head -c "\${STUB_BYTES:-0}" /dev/zero
echo "[mpeg4 @ 0x55d0c8a0] stub failure after \${STUB_BYTES:-0} bytes" >&2
exit 1
`,
  );
  await chmod(path, 0o755);
  return path;
}

const savedEnvironment = { ...process.env };

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'darkroom-video-'));
  const location = locateBinary('ffmpeg');
  if (location === undefined) throw new Error('These tests need ffmpeg: install it or set FFMPEG_PATH');
  ffmpeg = location.path;

  ramp = await generate('ramp.avi', 'color=c=black:size=64x48:rate=10:d=3,format=rgb24,geq=r=8*N:g=8*N:b=8*N');
  large = await generate('large.avi', 'testsrc=size=320x240:rate=10:d=3');
  pattern = await generate('pattern.avi', 'testsrc=size=64x48:rate=10:d=3', ['-c:v', 'mpeg4']);
});

afterEach(() => {
  process.env = { ...savedEnvironment };
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('probeVideo', () => {
  it('reads size, rate and frame count', async () => {
    const info = await probeVideo(ramp);

    expect(info).toEqual({ width: 64, height: 48, fps: 10, durationSeconds: 3, frameCount: 30, frameCountExact: true, codec: 'mpeg4', format: 'avi' });
    expect(Object.isFrozen(info)).toBe(true);
  });

  it('rejects a text file', async () => {
    const file = join(directory, 'notes.avi');
    await writeFile(file, 'These are notes about a video, not a video.\n');

    const error = await probeVideo(file).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(DarkroomError);
    expect((error as DarkroomError).code).toBe('UNSUPPORTED_FORMAT');
    expect((error as DarkroomError).message).toBe(`${file} is not a video: ffprobe cannot read it (Invalid data found when processing input)`);
  });

  it('rejects a PNG image', async () => {
    const file = join(directory, 'still.png');
    await run(ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48', '-frames:v', '1', file]);

    const error = await probeVideo(file).catch((caught: unknown) => caught);

    expect((error as DarkroomError).code).toBe('UNSUPPORTED_FORMAT');
    expect((error as DarkroomError).message).toBe(`${file} is an image (png), not a video`);
  });

  it('rejects an audio file', async () => {
    const file = await generate('tone.wav', 'sine=d=0.2', []);

    const error = await probeVideo(file).catch((caught: unknown) => caught);

    expect((error as DarkroomError).code).toBe('UNSUPPORTED_FORMAT');
    expect((error as DarkroomError).message).toBe(`${file} is not a video: ffprobe found no video stream (streams: audio)`);
  });

  it('rejects a missing file', async () => {
    const file = join(directory, 'missing.avi');

    const error = await probeVideo(file).catch((caught: unknown) => caught);

    expect((error as DarkroomError).code).toBe('INVALID_INPUT');
    expect((error as DarkroomError).message).toBe(`${file} cannot be read: the file does not exist`);
    expect((error as DarkroomError).file).toBe(file);
  });

  it('reports an ffprobe that cannot start', async () => {
    process.env.FFPROBE_PATH = join(directory, 'no-such-ffprobe');

    const error = await probeVideo(ramp).catch((caught: unknown) => caught);

    expect((error as DarkroomError).code).toBe('BACKEND_UNAVAILABLE');
    expect((error as DarkroomError).message).toBe(
      `ffprobe at ${process.env.FFPROBE_PATH} cannot be started (spawn ${process.env.FFPROBE_PATH} ENOENT). ` +
        'Install ffmpeg or set FFPROBE_PATH to a working ffprobe binary.',
    );
  });
});

describe('probing after an ffprobe crash', () => {
  async function writeCrashingFfprobe(): Promise<string> {
    const path = join(directory, 'bin', 'ffprobe');
    await mkdir(join(directory, 'bin'), { recursive: true });
    await writeFile(path, '#!/bin/sh\ncase "$*" in\n  *-version*) echo "ffprobe version stub"; exit 0 ;;\nesac\nkill -SEGV $$\n');
    await chmod(path, 0o755);
    return path;
  }

  it('describes the video with ffmpeg', async () => {
    const file = await generate('clip.ts', 'testsrc=size=64x48:rate=10:d=1', ['-c:v', 'mpeg2video']);
    process.env.FFPROBE_PATH = await writeCrashingFfprobe();

    const info = await probeVideo(file);

    expect(info).toEqual({ width: 64, height: 48, fps: 10, durationSeconds: 1, frameCount: 10, frameCountExact: false, codec: 'mpeg2video', format: 'mpegts' });
  });

  it('names the crash when ffmpeg finds no video', async () => {
    const file = join(directory, 'crash-notes.ts');
    await writeFile(file, 'not a transport stream\n');
    process.env.FFPROBE_PATH = await writeCrashingFfprobe();

    const error = await probeVideo(file).catch((caught: unknown) => caught);

    expect((error as DarkroomError).code).toBe('UNSUPPORTED_FORMAT');
    expect((error as DarkroomError).message).toBe(
      `${file} could not be probed: ffprobe (${process.env.FFPROBE_PATH}) crashed with SIGSEGV, and ffmpeg found no video stream in it; set FFPROBE_PATH to another ffprobe build to try again`,
    );
  });
});

describe('parseFfmpegDescription', () => {
  it('reads an MPEG-TS header', () => {
    const stderr = [
      "Input #0, mpegts, from 'file:/tmp/t.ts':",
      '  Duration: 00:01:02.50, start: 1.500000, bitrate: 85 kb/s',
      '  Program 1 ',
      '    Stream #0:0[0x100]: Video: mpeg2video (Main) ([2][0][0][0] / 0x0002), yuv420p(tv, progressive), 128x96 [SAR 1:1 DAR 4:3], 10 fps, 10 tbr, 90k tbn, 20 tbc',
      '    Stream #0:1[0x101]: Audio: mp2 ([3][0][0][0] / 0x0003), 44100 Hz, stereo, s16p, 384 kb/s',
      'At least one output file must be specified',
    ].join('\n');

    expect(parseFfmpegDescription(stderr)).toEqual({ format: 'mpegts', duration: '62.5', video: { codec: 'mpeg2video', width: 128, height: 96, fps: '10' }, audioCodec: 'mp2' });
  });

  it('reads a comma-separated format name', () => {
    const stderr = "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:a.mp4':\n  Duration: N/A\n    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 1920x1080, 2500 kb/s, 29.97 fps, 29.97 tbr, 30k tbn\n";

    expect(parseFfmpegDescription(stderr)).toEqual({ format: 'mov,mp4,m4a,3gp,3g2,mj2', duration: undefined, video: { codec: 'h264', width: 1920, height: 1080, fps: '29.97' } });
  });

  it('returns undefined without an input', () => {
    expect(parseFfmpegDescription('x.ts: Invalid data found when processing input\n')).toBeUndefined();
  });
});

describe('parseFrameRate', () => {
  it('reads rationals and integers', () => {
    expect(parseFrameRate('30000/1001')).toBeCloseTo(29.97003, 5);
    expect(parseFrameRate('25')).toBe(25);
  });

  it('returns undefined for unknown rates', () => {
    expect(parseFrameRate('0/0')).toBeUndefined();
    expect(parseFrameRate(undefined)).toBeUndefined();
  });
});

describe('readFrames', () => {
  it.each([
    { channels: 1 as const, name: 'grey' },
    { channels: 3 as const, name: 'RGB' },
  ])('returns every $name frame at the requested size', async ({ channels }) => {
    const reader = readFrames(large, { width: 32, height: 24, channels });

    const frames = await collect(reader);

    expect(frames).toHaveLength(30);
    expect(frames.map((frame) => frame.index)).toEqual([...Array(30).keys()]);
    expect(frames[7].timeSeconds).toBeCloseTo(0.7, 10);
    for (const frame of frames) expect(frame.data.length).toBe(32 * 24 * channels);
    expect(frames[0].data.buffer).not.toBe(frames[1].data.buffer);
    expect(await reader.summary()).toEqual({
      status: 'complete',
      framesDecoded: 30,
      expectedFrames: 30,
      framesLost: 0,
      decodeErrors: 0,
      errorMessages: [],
      exitCode: 0,
      signal: null,
    });
  });

  it('counts frames by the video stream, not the longer audio', async () => {
    // WebM gives the video stream's duration only as a tag; the file's runs to the end of the audio.
    const file = join(directory, 'long-audio.webm');
    await run(ffmpeg, ['-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=24000/1001:duration=2', '-f', 'lavfi', '-i', 'sine=duration=4', '-c:v', 'libvpx', '-c:a', 'libvorbis', file]);
    const reader = readFrames(file, { channels: 3 });

    const frames = await collect(reader);
    const summary = await reader.summary();

    expect(frames).toHaveLength(48);
    expect(summary.expectedFrames === 48 || summary.expectedFrames === 49).toBe(true);
    expect(summary.status).toBe('complete');
    expect(summary.framesLost).toBe(0);
  });

  it('decodes the grey level of each frame', async () => {
    const frames = await collect(readFrames(ramp, { channels: 1 }));

    expect(frames).toHaveLength(30);
    for (const frame of frames) {
      expect(frame.data.length).toBe(64 * 48);
      expect(Math.abs(mean(frame.data) - 8 * frame.index)).toBeLessThan(2);
    }
  });

  it('decodes RGB in red, green, blue order', async () => {
    const file = await generate('red.avi', 'color=c=0xff0000:size=64x48:rate=10:d=0.3');

    const [frame] = await collect(readFrames(file, { channels: 3, maxFrames: 1 }));

    expect(frame.data[0]).toBeGreaterThan(230);
    expect(frame.data[1]).toBeLessThan(25);
    expect(frame.data[2]).toBeLessThan(25);
  });

  it('starts exactly at startFrame', async () => {
    const reader = readFrames(ramp, { channels: 1, startFrame: 7, maxFrames: 5 });

    const frames = await collect(reader);

    expect(frames.map((frame) => frame.index)).toEqual([7, 8, 9, 10, 11]);
    expect(frames[0].timeSeconds).toBeCloseTo(0.7, 10);
    for (const frame of frames) expect(Math.abs(mean(frame.data) - 8 * frame.index)).toBeLessThan(2);
    expect((await reader.summary()).expectedFrames).toBe(5);
  });

  it('resamples to the fps option', async () => {
    const reader = readFrames(ramp, { channels: 1, fps: 5, startFrame: 2 });

    const frames = await collect(reader);

    expect(frames.map((frame) => frame.index)).toEqual([...Array(13).keys()].map((index) => index + 2));
    expect(frames[0].timeSeconds).toBeCloseTo(0.4, 10);
    expect(Math.abs(mean(frames[0].data) - 8 * 4)).toBeLessThan(2);
    expect((await reader.summary()).status).toBe('complete');
  });

  it('kills ffmpeg when the consumer stops early', async () => {
    const reader = readFrames(large, { channels: 3 });
    let count = 0;

    for await (const frame of reader) {
      count++;
      if (frame.index === 1) break;
    }
    const summary = await reader.summary();

    expect(count).toBe(2);
    expect(summary.status).toBe('stopped');
    expect(summary.framesDecoded).toBe(2);
    expect(summary.framesLost).toBeUndefined();
    // A signal in the summary means that Node saw ffmpeg exit, so no zombie is left.
    expect(summary.signal).toBe('SIGKILL');
  });

  it('holds less than two frames for a slow consumer', async () => {
    const frameBytes = 320 * 240 * 3;
    const reader = readFrames(large, { channels: 3 });
    const buffered: number[] = [];

    for await (const frame of reader) {
      // Without backpressure ffmpeg would decode all 30 frames (6.9 MB) during these waits.
      await new Promise((resolve) => setTimeout(resolve, 20));
      buffered.push(reader.bufferedBytes);
      if (frame.index === 5) break;
    }

    expect(buffered).toHaveLength(6);
    const bound = frameBytes + 2 * (getDefaultHighWaterMark(false) + 64 * 1024);
    expect(Math.max(...buffered)).toBeLessThanOrEqual(bound);
    expect(Math.max(...buffered)).toBeLessThan(2 * frameBytes);
  });

  it('returns the frames before damage in the middle', async () => {
    const file = join(directory, 'damaged.avi');
    const bytes = await readFile(pattern);
    const middle = Math.floor(bytes.length / 2);
    for (let i = middle; i < middle + 2000; i++) bytes[i] = i % 2 === 0 ? 0x00 : 0xff;
    await writeFile(file, bytes);
    const reader = readFrames(file, { channels: 1 });

    const frames = await collect(reader);
    const summary = await reader.summary();

    expect(frames.length).toBeGreaterThan(0);
    expect(frames.length).toBeLessThan(30);
    expect(summary.status).toBe('partial');
    expect(summary.framesDecoded).toBe(frames.length);
    expect(summary.expectedFrames).toBe(30);
    expect(summary.framesLost).toBe(30 - frames.length);
    expect(summary.decodeErrors).toBeGreaterThan(0);
    expect(summary.errorMessages[0]).toMatch(/^\[mpeg4\] /);
  });

  it('returns the frames of a truncated file', async () => {
    const file = join(directory, 'truncated.avi');
    const bytes = await readFile(pattern);
    await writeFile(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const reader = readFrames(file, { channels: 1 });

    const frames = await collect(reader);
    const summary = await reader.summary();

    expect(frames.length).toBeGreaterThan(0);
    expect(summary.status).toBe('partial');
    expect(summary.framesLost).toBe(30 - frames.length);
  });

  it('reports a failed exit after some frames as partial', async () => {
    process.env.FFMPEG_PATH = await writeFailingFfmpeg();
    process.env.STUB_BYTES = String(2 * 64 * 48 + 100);
    const reader = readFrames(ramp, { channels: 1 });

    const frames = await collect(reader);
    const summary = await reader.summary();

    expect(frames).toHaveLength(2);
    expect(summary.status).toBe('partial');
    expect(summary.exitCode).toBe(1);
    expect(summary.framesLost).toBe(28);
    expect(summary.decodeErrors).toBe(2);
    expect(summary.errorMessages).toEqual(['[mpeg4] stub failure after 6244 bytes', "ffmpeg's output ended 100 bytes into frame 2"]);
  });

  it('raises when ffmpeg fails before the first frame', async () => {
    process.env.FFMPEG_PATH = await writeFailingFfmpeg();
    process.env.STUB_BYTES = '0';
    const reader = readFrames(ramp, { channels: 1 });

    const error = await collect(reader).catch((caught: unknown) => caught);

    expect((error as DarkroomError).code).toBe('INVALID_INPUT');
    expect((error as DarkroomError).message).toBe(`${ramp} cannot be decoded: ffmpeg exited with code 1 ([mpeg4] stub failure after 0 bytes)`);
    await expect(reader.summary()).rejects.toBe(error);
  });

  it('reports an ffmpeg that cannot start', async () => {
    process.env.FFMPEG_PATH = join(directory, 'no-such-ffmpeg');

    const error = await collect(readFrames(ramp, { channels: 1 })).catch((caught: unknown) => caught);

    expect((error as DarkroomError).code).toBe('BACKEND_UNAVAILABLE');
    expect((error as DarkroomError).message).toBe(
      `ffmpeg at ${process.env.FFMPEG_PATH} cannot be started (spawn ${process.env.FFMPEG_PATH} ENOENT). ` +
        'Install ffmpeg or set FFMPEG_PATH to a working ffmpeg binary.',
    );
  });

  it('raises the probe error for a non-video', async () => {
    const file = join(directory, 'missing.mp4');

    await expect(collect(readFrames(file, { channels: 1 }))).rejects.toThrow(`${file} cannot be read: the file does not exist`);
  });

  it('rejects invalid options', () => {
    expect(() => readFrames(ramp, { channels: 2 as 1 })).toThrow('Expected 1 (grey) or 3 (RGB) for channels but received 2');
    expect(() => readFrames(ramp, { channels: 1, width: 0 })).toThrow('Expected a positive integer for width but received 0');
    expect(() => readFrames(ramp, { channels: 1, startFrame: -1 })).toThrow('Expected a non-negative integer for startFrame but received -1');
  });
});

describe('writeVideo', () => {
  function greyFrame(level: number): Uint8Array {
    return new Uint8Array(64 * 48).fill(level);
  }

  it.each([
    { extension: 'mp4', codec: 'h264' },
    { extension: 'avi', codec: 'mpeg4' },
  ])('round-trips grey frames through $extension', async ({ extension, codec }) => {
    const file = join(directory, `written.${extension}`);
    const writer = await writeVideo(file, { width: 64, height: 48, fps: 10, channels: 1 });

    for (let i = 0; i < 10; i++) await writer.write(greyFrame(20 * i + 10));
    await writer.close();
    const info = await probeVideo(file);
    const frames = await collect(readFrames(file, { channels: 1 }));

    expect(info.codec).toBe(codec);
    expect(info.width).toBe(64);
    expect(info.fps).toBe(10);
    expect(frames).toHaveLength(10);
    for (const frame of frames) expect(Math.abs(mean(frame.data) - (20 * frame.index + 10))).toBeLessThan(2);
    expect((await readdir(directory)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('round-trips RGB frames', async () => {
    const file = join(directory, 'gradient.mp4');
    const frame = new Uint8Array(64 * 48 * 3);
    for (let y = 0; y < 48; y++) {
      for (let x = 0; x < 64; x++) frame.set([x * 4, y * 5, 128], (y * 64 + x) * 3);
    }
    const writer = await writeVideo(file, { width: 64, height: 48, fps: 10, channels: 3 });

    for (let i = 0; i < 3; i++) await writer.write(frame);
    await writer.close();
    const frames = await collect(readFrames(file, { channels: 3 }));

    expect(frames).toHaveLength(3);
    const error = frames[2].data.reduce((sum, value, i) => sum + Math.abs(value - frame[i]), 0) / frame.length;
    expect(error).toBeLessThan(3);
  });

  it('leaves no file after abort', async () => {
    const folder = await mkdtemp(join(directory, 'abort-'));
    const file = join(folder, 'aborted.mp4');
    const writer = await writeVideo(file, { width: 64, height: 48, fps: 10, channels: 1 });

    await writer.write(greyFrame(50));
    await writer.abort();

    expect(await readdir(folder)).toEqual([]);
    await expect(writer.write(greyFrame(50))).rejects.toThrow(`Cannot write a frame to ${file} after close() or abort()`);
  });

  it('keeps the previous file after abort', async () => {
    const folder = await mkdtemp(join(directory, 'keep-'));
    const file = join(folder, 'kept.avi');
    await copyFile(ramp, file);
    const writer = await writeVideo(file, { width: 64, height: 48, fps: 10, channels: 1 });

    await writer.write(greyFrame(50));
    await writer.abort();

    expect(await readdir(folder)).toEqual(['kept.avi']);
    expect(await readFile(file)).toEqual(await readFile(ramp));
  });

  it('raises ffmpeg errors and cleans up', async () => {
    process.env.FFMPEG_PATH = await writeFailingFfmpeg();
    const folder = await mkdtemp(join(directory, 'failed-'));
    const file = join(folder, 'failed.avi');
    const writer = await writeVideo(file, { width: 64, height: 48, fps: 10, channels: 1 });

    const error = await (async () => {
      for (let i = 0; i < 100; i++) await writer.write(greyFrame(i));
      await writer.close();
    })().catch((caught: unknown) => caught);

    expect((error as DarkroomError).code).toBe('INTERNAL');
    expect((error as DarkroomError).message).toBe(`ffmpeg failed to encode ${file}: it exited with code 1 ([mpeg4] stub failure after 0 bytes)`);
    await expect(writer.close()).rejects.toBe(error);
    expect(await readdir(folder)).toEqual([]);
  });

  it('reports an ffmpeg that cannot start', async () => {
    process.env.FFMPEG_PATH = join(directory, 'no-such-ffmpeg');

    const error = await writeVideo(join(directory, 'never.mp4'), { width: 64, height: 48, fps: 10, channels: 1 }).catch((caught: unknown) => caught);

    expect((error as DarkroomError).code).toBe('BACKEND_UNAVAILABLE');
    expect((error as DarkroomError).message).toMatch(/^ffmpeg at .*no-such-ffmpeg cannot be started \(spawn .*no-such-ffmpeg ENOENT\)\. /);
  });

  it('rejects a frame of the wrong size', async () => {
    const writer = await writeVideo(join(directory, 'sized.mp4'), { width: 64, height: 48, fps: 10, channels: 3 });

    await expect(writer.write(greyFrame(0))).rejects.toThrow('Expected a Uint8Array of 9216 bytes (width * height * channels) for frame.length but received 3072');
    await writer.abort();
  });

  it('rejects odd sizes and unknown extensions', async () => {
    await expect(writeVideo(join(directory, 'odd.mp4'), { width: 63, height: 48, fps: 10, channels: 1 })).rejects.toThrow(
      'Expected an even positive integer for width but received 63',
    );
    const file = join(directory, 'clip.webm');
    await expect(writeVideo(file, { width: 64, height: 48, fps: 10, channels: 1 })).rejects.toThrow(
      `Cannot write ${file}: darkroom writes video as .mp4, .m4v, .mov, .mkv or .avi`,
    );
  });
});
