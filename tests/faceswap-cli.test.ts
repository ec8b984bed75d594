import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { resolveFaceSwapCommandOptions } from '../src/cli/faceswap.js';
import { type FaceSwapEvalResult, formatFaceSwapEval, nearestRealFace } from '../src/eval/faceswap.js';
import { SYNTHETIC_NOTE } from '../src/faces/synthetic.js';
import { locateBinary } from '../src/media/ffmpeg.js';
import { runCli } from './helpers/cli.js';
import { saveTinyFaceSwap } from './helpers/faceswap.js';

const SAMPLE = fileURLToPath(new URL('../samples/faces/astronaut.jpg', import.meta.url));
const run = promisify(execFile);

let directory: string;
let model: string;
let video: string;

function binary(name: 'ffmpeg' | 'ffprobe'): string {
  const found = locateBinary(name);
  if (found === undefined) throw new Error(`This test needs ${name}: install ffmpeg or set ${name === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH'}`);
  return found.path;
}

interface ProbedStream {
  codec_type: string;
  codec_name: string;
  avg_frame_rate: string;
  nb_frames?: string;
}

async function probe(file: string): Promise<{ streams: ProbedStream[]; format: { tags?: Record<string, string> } }> {
  const { stdout } = await run(binary('ffprobe'), ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', '-count_frames', file]);
  return JSON.parse(stdout);
}

beforeAll(async () => {
  await initBackend('wasm');
  directory = await mkdtemp(join(tmpdir(), 'darkroom-faceswap-cli-'));
  model = join(directory, 'model');
  await saveTinyFaceSwap(model);
  video = join(directory, 'portrait.avi');
  // Eight frames at 10 fps of a window sliding over the photo, with one second of a 440 Hz tone.
  await run(binary('ffmpeg'), [
    '-v', 'error', '-nostdin', '-y', '-loop', '1', '-framerate', '10', '-i', SAMPLE, '-f', 'lavfi', '-i', 'sine=frequency=440:duration=1',
    '-vf', "scale=232:232,crop=192:192:'4*n':20", '-frames:v', '8', '-c:v', 'mpeg4', '-q:v', '2', '-c:a', 'pcm_s16le', video,
  ]);
}, 60_000);

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('faceswap options', () => {
  const message = (raw: Record<string, unknown>): string => {
    try {
      resolveFaceSwapCommandOptions({ model: 'm', to: 'b', out: 'o', ...raw });
    } catch (error) {
      return (error as Error).message;
    }
    return 'no error';
  };

  it('fills in the defaults', () => {
    expect(resolveFaceSwapCommandOptions({ model: 'm', to: 'a', out: 'o' })).toEqual({ model: 'm', to: 'a', out: 'o', label: false, minSize: 40, minScore: 0.5, mask: 'face', colourMatch: 'lab', identityShift: 1 });
  });

  it('rejects bad values exactly', () => {
    expect(message({ to: 'c' })).toBe('Expected a or b for --to but received "c"');
    expect(message({ to: undefined })).toBe('Expected a or b for --to but received undefined');
    expect(message({ model: undefined })).toBe('Expected a folder path for --model but received undefined');
    expect(message({ out: '' })).toBe('Expected a folder path for --out but received ""');
    expect(message({ minSize: '0' })).toBe('Expected an integer from 1 to 100000 for --min-size but received 0');
    expect(message({ minScore: '2' })).toBe('Expected a number from 0.05 to 1 for --min-score but received 2');
    expect(message({ mask: 'oval' })).toBe('Expected hull or face for --mask but received "oval"');
    expect(message({ colourMatch: 'rgb' })).toBe('Expected one of lab, lightness, none for --colour-match but received "rgb"');
    expect(message({ identityShift: '2.5' })).toBe('Expected a number from 0 to 2 for --identity-shift but received 2.5');
    expect(message({ identityShift: '-1' })).toBe('Expected a number from 0 to 2 for --identity-shift but received -1');
    expect(message({ identityShift: 'far' })).toBe('Expected a number from 0 to 2 for --identity-shift but received "far"');
    expect(message({ identityShift: '' })).toBe('Expected a number from 0 to 2 for --identity-shift but received ""');
  });
});

describe('darkroom faceswap', () => {
  it('prints help with consent line', async () => {
    const result = await runCli(['faceswap', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: darkroom faceswap --model DIR --to a|b');
    expect(result.stdout).toContain('Only swap faces of people who have agreed to it.');
  });

  it('exits 2 on a bad flag', async () => {
    const result = await runCli(['faceswap', '--model', model, '--to', 'c', SAMPLE, '--out', join(directory, 'never')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Expected a or b for --to but received "c"');
  });

  it('exits 2 on a missing input', async () => {
    const missing = join(directory, 'missing.jpg');
    // No model is read: the listing fails first, as in darkroom run.
    const result = await runCli(['faceswap', '--model', join(directory, 'no-model'), '--to', 'b', missing, '--out', join(directory, 'never')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`darkroom faceswap: ${missing} not found`);
  });

  it('swaps and marks a photo', async () => {
    const out = join(directory, 'photo-out');
    const result = await runCli(['faceswap', '--model', model, '--to', 'b', SAMPLE, '--out', out, '--label']);
    expect(result.stderr).toContain('has no identity descriptors, so every face is swapped');
    expect(result.stderr).toContain('has no latent means (the model was saved before the identity shift existed), so faces are swapped without the shift');
    expect(result.stderr).toContain(`add them with "darkroom faces latent-means --model ${model}" (seconds, no training)`);
    expect(result.stderr).toContain('mask face, colour match lab, identity shift 0');
    expect(result.stderr).toContain('astronaut.jpg: 1 of 1 face swapped from anna to bruno');
    expect(result.code).toBe(0);

    const written = join(out, 'astronaut.jpg');
    const metadata = await sharp(written).metadata();
    expect(metadata.format).toBe('jpeg');
    expect([metadata.width, metadata.height]).toEqual([256, 256]);
    expect(metadata.xmpAsString).toContain(SYNTHETIC_NOTE);

    // The face changed, the corner opposite the caption did not.
    const before = await sharp(SAMPLE).raw().toBuffer();
    const after = await sharp(written).raw().toBuffer();
    const difference = (x: number, y: number, side: number): number => {
      let sum = 0;
      for (let row = y; row < y + side; row++) for (let column = x; column < x + side; column++) for (let c = 0; c < 3; c++) sum += Math.abs(before[(row * 256 + column) * 3 + c] - after[(row * 256 + column) * 3 + c]);
      return sum / (side * side * 3);
    };
    expect(difference(96, 48, 24)).toBeGreaterThan(8);
    expect(difference(230, 10, 16)).toBeLessThan(3);
    // The caption darkens the lower left corner.
    expect(difference(8, 236, 8)).toBeGreaterThan(20);
  });

  it('shifts codes unless --identity-shift 0', async () => {
    // Means far apart, so that the shift changes the decoded face plainly.
    const shifted = join(directory, 'model-with-means');
    await saveTinyFaceSwap(shifted, { latentMeans: { a: Array(8).fill(-3), b: Array(8).fill(3) } });
    const convert = async (modelDir: string, out: string, extra: string[] = []): Promise<{ stderr: string; pixels: Buffer }> => {
      const result = await runCli(['faceswap', '--model', modelDir, '--to', 'b', SAMPLE, '--out', join(directory, out), ...extra]);
      expect(result.code).toBe(0);
      return { stderr: result.stderr, pixels: await sharp(join(directory, out, 'astronaut.jpg')).raw().toBuffer() };
    };

    const byDefault = await convert(shifted, 'shift-default');
    const off = await convert(shifted, 'shift-off', ['--identity-shift', '0']);
    const withoutMeans = await convert(model, 'shift-none');

    expect(byDefault.stderr).toContain('colour match lab, identity shift 1');
    expect(byDefault.stderr).not.toContain('latent means');
    expect(off.stderr).toContain('colour match lab, identity shift 0');
    // The same weights: without the shift, a model with means converts as one without them.
    expect(off.pixels.equals(withoutMeans.pixels)).toBe(true);
    let changed = 0;
    for (let i = 0; i < off.pixels.length; i++) changed += Math.abs(off.pixels[i] - byDefault.pixels[i]) > 8 ? 1 : 0;
    expect(changed).toBeGreaterThan(300);
  });

  it('rejects a given shift without latent means', async () => {
    const result = await runCli(['faceswap', '--model', model, '--to', 'b', SAMPLE, '--out', join(directory, 'never'), '--identity-shift', '1.5']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `darkroom faceswap: --identity-shift 1.5 needs the model's latent means, and ${model}/darkroom.json has none (the model was saved before the identity shift existed); add them with "darkroom faces latent-means --model ${model}" (seconds, no training), or give --identity-shift 0`,
    );
  });

  it('keeps video frames, rate and audio', async () => {
    const out = join(directory, 'video-out');
    const result = await runCli(['faceswap', '--model', model, '--to', 'a', video, '--out', out, '--min-size', '20']);
    expect(result.stderr).toMatch(/portrait\.avi: \d+ of \d+ faces? swapped from bruno to anna in 8 of 8 frames, [\d.]+ s\/frame/);
    expect(result.code).toBe(0);

    const probed = await probe(join(out, 'portrait.avi'));
    const videoStream = probed.streams.find((stream) => stream.codec_type === 'video')!;
    const audioStream = probed.streams.find((stream) => stream.codec_type === 'audio');
    expect(videoStream.avg_frame_rate).toBe('10/1');
    expect(videoStream.nb_frames).toBe('8');
    expect(audioStream?.codec_name).toBe('pcm_s16le');
    expect(probed.format.tags?.comment).toBe(SYNTHETIC_NOTE);
    expect((await readdir(out)).filter((name) => name.startsWith('.'))).toEqual([]);
  }, 60_000);

  it('writes no video without a swapped face', async () => {
    const sky = join(directory, 'sky.avi');
    await run(binary('ffmpeg'), ['-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', 'color=c=0x3060a0:size=96x64:rate=10:d=0.5', '-c:v', 'mpeg4', sky]);
    const out = join(directory, 'sky-out', 'nested');

    const result = await runCli(['faceswap', '--model', model, '--to', 'b', sky, '--out', out]);

    expect(result.stderr).toContain(`${sky}: no face found; nothing written`);
    expect(result.stderr).toContain('0 of 1 file written, so no output folder was left');
    // Both folders that the run made are gone.
    expect(await stat(join(directory, 'sky-out')).catch(() => 'missing')).toBe('missing');
  });

  it('reports bad files and goes on', async () => {
    const inputs = join(directory, 'mixed');
    await mkdir(inputs);
    await writeFile(join(inputs, 'broken.jpg'), (await readFile(SAMPLE)).subarray(0, 600));
    await writeFile(join(inputs, 'notes.txt'), 'not a picture\n');
    await sharp({ create: { width: 120, height: 90, channels: 3, background: { r: 40, g: 90, b: 160 } } }).png().toFile(join(inputs, 'sky.png'));
    const out = join(directory, 'mixed-out');

    // The folder gives broken.jpg and sky.png; a file named on the command line is tried whatever its extension.
    const result = await runCli(['faceswap', '--model', model, '--to', 'b', inputs, join(inputs, 'notes.txt'), SAMPLE, '--out', out, '--min-size', '20']);
    expect(result.stderr).toMatch(new RegExp(`${join(inputs, 'broken.jpg').replace(/[.]/g, '\\.')} is truncated or corrupt`));
    expect(result.stderr).toContain(`${join(inputs, 'notes.txt')} is neither a photo nor a video`);
    expect(result.stderr).toContain(`${join(inputs, 'sky.png')}: no face found; nothing written`);
    expect(result.stderr).toContain('1 of 4 files written');
    expect(result.code).toBe(1);
    expect(await readdir(out)).toEqual(['astronaut.jpg']);
  });

  it('leaves target and tiny faces alone', async () => {
    // The photo's own descriptor as identity a, its opposite as b: the face is a.
    const faces = join(directory, 'faces');
    const extracted = await runCli(['faces', 'extract', SAMPLE, '--out', faces, '--min-size', '20']);
    expect(extracted.code).toBe(0);
    const descriptor = (JSON.parse(await readFile(join(faces, 'faces.json'), 'utf8')) as { faces: { descriptor: number[] }[] }).faces[0].descriptor;
    const norm = Math.hypot(...descriptor);
    const described = join(directory, 'described');
    await saveTinyFaceSwap(described, { descriptors: { a: descriptor.map((value) => value / norm), b: descriptor.map((value) => -value / norm) } });

    const toA = await runCli(['faceswap', '--model', described, '--to', 'a', SAMPLE, '--out', join(directory, 'to-a')]);
    expect(toA.stderr).toContain(`${SAMPLE}: no face swapped; 1 face found and left alone (1 already anna); nothing written`);
    // The run made the folder and wrote nothing into it, so it removed the folder again.
    expect(await stat(join(directory, 'to-a')).catch(() => 'missing')).toBe('missing');
    const toB = await runCli(['faceswap', '--model', described, '--to', 'b', SAMPLE, '--out', join(directory, 'to-b')]);
    expect(toB.stderr).toContain('1 of 1 face swapped from anna to bruno');
    const tiny = await runCli(['faceswap', '--model', described, '--to', 'b', SAMPLE, '--out', join(directory, 'tiny'), '--min-size', '1000']);
    expect(tiny.stderr).toContain('left alone (1 smaller than 1000 px)');
  }, 60_000);

  it('leaves bystanders of neither identity alone', async () => {
    // Both identity means lie far from the photo's descriptor, a nearer than b: the face is nobody's.
    const faces = join(directory, 'faces-bystander');
    await runCli(['faces', 'extract', SAMPLE, '--out', faces, '--min-size', '20']);
    const descriptor = (JSON.parse(await readFile(join(faces, 'faces.json'), 'utf8')) as { faces: { descriptor: number[] }[] }).faces[0].descriptor;
    const unit = (values: number[]): number[] => values.map((value) => value / Math.hypot(...values));
    const orthogonal = (shift: number): number[] => unit(descriptor.map((_, index) => (index % 2 === shift ? 1 : -1) * 0.1 + (index === shift ? 1 : 0)));
    const strangers = join(directory, 'strangers');
    const own = unit(descriptor);
    const nearer = unit(own.map((value, index) => value + orthogonal(0)[index]));
    await saveTinyFaceSwap(strangers, { descriptors: { a: nearer, b: orthogonal(1) } });

    const result = await runCli(['faceswap', '--model', strangers, '--to', 'b', SAMPLE, '--out', join(directory, 'bystander')]);

    expect(result.stderr).toContain('left alone (1 neither identity)');
  }, 60_000);

  it('numbers outputs that share a name', async () => {
    const out = join(directory, 'twice');

    const result = await runCli(['faceswap', '--model', model, '--to', 'b', SAMPLE, SAMPLE, '--out', out]);

    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`is written to ${join(out, 'astronaut-2.jpg')}, because another input has the same name`);
    expect((await sharp(join(out, 'astronaut.jpg')).metadata()).format).toBe('jpeg');
    expect((await sharp(join(out, 'astronaut-2.jpg')).metadata()).format).toBe('jpeg');
  }, 60_000);

  it('rejects an --out that is a file', async () => {
    const result = await runCli(['faceswap', '--model', model, '--to', 'b', SAMPLE, '--out', SAMPLE]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${SAMPLE} is a file, not a folder; give --out a folder`);
  });
});

describe('real-faces decoder', () => {
  it('returns the crop whose landmarks lie nearest', async () => {
    const landmarks = (shift: number): [number, number][] => Array.from({ length: 68 }, (_, point) => [10 + point * 0.5 + shift, 20 + shift]);
    const crops = [new Uint8Array([1, 1, 1]), new Uint8Array([2, 2, 2]), new Uint8Array([3, 3, 3])];
    const decoder = nearestRealFace({ crops, landmarks: [landmarks(0), landmarks(4), landmarks(8)] });

    const picked = await decoder([new Uint8Array(3), new Uint8Array(3)], 1, [landmarks(5), landmarks(-3)]);
    expect(picked).toEqual([crops[1], crops[0]]);
    await expect(decoder([new Uint8Array(3)], 1)).rejects.toThrow('The real-faces decoder needs the landmarks of each crop');
  });
});

describe('eval faceswap report', () => {
  it('shows share of all swapped faces', () => {
    const direction = (swapped: number, scored: number, closerToTarget: number) => ({ from: 'anna', to: 'bruno', swapped, scored, closerToTarget, share: closerToTarget / scored, shareOfSwapped: closerToTarget / swapped });
    const result = {
      model: 'm',
      identities: { a: 'anna', b: 'bruno' },
      psnr: { a: { crops: 2, split: 'validation', meanDb: 20 }, b: { crops: 2, split: 'validation', meanDb: 20 } },
      identityShift: 1,
      crops: { aToB: { ...direction(2, 2, 2), baseline: 0 }, bToA: { ...direction(2, 2, 1), baseline: 0 } },
      video: { file: 'clip.avi', every: 3, mask: 'face', colourMatch: 'lab', faces: 'decoded', framesScored: 9, references: 'faces.json', aToB: direction(47, 42, 34), bToA: direction(42, 42, 37), swaps: [] },
      target: 0.8,
    } as unknown as FaceSwapEvalResult;

    const text = formatFaceSwapEval(result);

    expect(text).toContain('anna -> bruno: 34 of 42 scored (47 swapped) nearer to bruno: 81.0 % (72.3 % of all 47 swapped)');
    expect(text).toContain('anna -> bruno: 37 of 42 scored (42 swapped) nearer to bruno: 88.1 %\n');
    expect(text).toContain('faces decoded by the model with identity shift 1;');
  });
});

describe('darkroom eval faceswap', () => {
  it('prints PSNR and identity scores', async () => {
    const crops = { a: join(directory, 'crops-a'), b: join(directory, 'crops-b') };
    for (const [identity, folder] of Object.entries(crops)) {
      await mkdir(folder);
      for (let index = 0; index < 3; index++) {
        await sharp(SAMPLE).extract({ left: 70 + index * 4 + (identity === 'b' ? 20 : 0), top: 20, width: 110, height: 110 }).resize(64, 64).png().toFile(join(folder, `${index}.png`));
      }
    }
    const report = join(directory, 'eval.json');

    const result = await runCli(['eval', 'faceswap', '--model', model, '--a', crops.a, '--b', crops.b, '--video', video, '--min-size', '20', '--out', report]);
    expect(result.stderr).toContain('(all of them: the model lists no held-out crops)');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/anna \(a\): [\d.]+ dB over 3 crops/);
    expect(result.stdout).toMatch(/bruno \(b\): [\d.]+ dB over 3 crops/);
    expect(result.stdout).toMatch(/anna -> bruno: \d of 3 scored \(3 swapped\) nearer to bruno: [\d.]+ % \(before the swap: [\d.]+ %\)/);
    expect(result.stdout).toContain('Identity score on');
    expect(result.stdout).toContain('8 frames; mask face, colour match lab; faces decoded by the model with identity shift 0; swapped faces re-detected in the converted frames');

    const written = JSON.parse(await readFile(report, 'utf8'));
    expect(written.psnr.a.crops).toBe(3);
    expect(written.crops.aToB.scored).toBe(3);
    expect(written.video.framesScored).toBe(8);
    expect(written.video.faces).toBe('decoded');
    const { swaps } = written.video as { swaps: { frame: number; to: string; distances?: { target: number; source: number } }[] };
    expect(swaps).toHaveLength(written.video.aToB.swapped + written.video.bToA.swapped);
    expect(swaps.filter((face) => face.to === 'b' && face.distances !== undefined)).toHaveLength(written.video.aToB.scored);
    expect(swaps.filter((face) => face.to === 'b' && face.distances !== undefined && face.distances.target < face.distances.source)).toHaveLength(written.video.aToB.closerToTarget);
    expect(swaps.every((face) => face.frame >= 0 && face.frame < 8)).toBe(true);
    for (const direction of [written.video.aToB, written.video.bToA]) expect(direction.shareOfSwapped).toBe(direction.swapped === 0 ? null : direction.closerToTarget / direction.swapped);
    // The model has no latent means, so the swaps were scored unshifted, and the log warns of it.
    expect(written.identityShift).toBe(0);
    expect(result.stderr).toContain('has no latent means');
    expect(result.stdout).toContain('faces decoded by the model with identity shift 0;');

    // Plain crop folders have no landmarks to pick a real face by.
    const real = await runCli(['eval', 'faceswap', '--model', model, '--a', crops.a, '--b', crops.b, '--video', video, '--real-faces']);
    expect(real.code).toBe(2);
    expect(real.stderr).toContain(`darkroom eval faceswap: --real-faces picks crops by their landmarks, and --a ${crops.a} has none; give a "faces extract" folder`);
    expect(written.target).toBe(0.8);
  }, 120_000);

  it('rejects flags of other tasks', async () => {
    const result = await runCli(['eval', 'faceswap', '--model', model, '--a', 'x', '--b', 'y', '--sigma', '5']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('darkroom eval faceswap: --sigma does not apply; it reads --a and --b');
    const shift = await runCli(['eval', 'faceswap', '--model', model, '--a', join(directory, 'crops-a'), '--b', join(directory, 'crops-b'), '--identity-shift', '0.5']);
    expect(shift.code).toBe(2);
    expect(shift.stderr).toContain(`darkroom eval faceswap: --identity-shift 0.5 needs the model's latent means, and ${model}/darkroom.json has none`);
    const every = await runCli(['eval', 'faceswap', '--model', model, '--a', 'x', '--b', 'y', '--every', '2']);
    expect(every.stderr).toContain('--every, --min-size, --mask, --colour-match and --real-faces apply only with --video FILE');
  });
});
