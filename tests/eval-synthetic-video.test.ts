import { describe, expect, it } from 'vitest';

import { ANOMALY_KINDS, generateSyntheticVideo, type SyntheticVideo } from '../src/eval/synthetic-video.js';

const SMALL = { width: 80, height: 60, fps: 10 } as const;

const labelled = generateSyntheticVideo({ ...SMALL, seed: 3, frames: 700, anomalies: ANOMALY_KINDS });

function mean(frame: Uint8Array, rows: [number, number] = [0, SMALL.height]): number {
  const [from, to] = rows;
  let sum = 0;
  for (let i = from * SMALL.width; i < to * SMALL.width; i++) sum += frame[i]!;
  return sum / ((to - from) * SMALL.width);
}

function sameFrames(a: SyntheticVideo, b: SyntheticVideo): boolean {
  return a.frames.length === b.frames.length && a.frames.every((frame, i) => Buffer.compare(frame, b.frames[i]!) === 0);
}

function event(kind: string) {
  const found = labelled.events.find((e) => e.kind === kind);
  if (found === undefined) throw new Error(`no ${kind} event`);
  return found;
}

describe('synthetic video', () => {
  it('repeats itself for the same seed', () => {
    const again = generateSyntheticVideo({ ...SMALL, seed: 3, frames: 700, anomalies: ANOMALY_KINDS });
    expect(sameFrames(again, labelled)).toBe(true);
    expect(again.events).toEqual(labelled.events);
    expect(Array.from(again.labels)).toEqual(Array.from(labelled.labels));
  });

  it('changes with the seed', () => {
    const first = generateSyntheticVideo({ ...SMALL, seed: 1, frames: 20 });
    const second = generateSyntheticVideo({ ...SMALL, seed: 2, frames: 20 });
    expect(sameFrames(first, second)).toBe(false);
  });

  it('keeps the background of a scene across seeds', () => {
    // People never reach the top quarter of the frame. There, frames differ only by the
    // illumination drift, which dividing by the mean removes, and by sensor noise.
    const wall = (video: SyntheticVideo) => {
      const rows = video.frames[0]!.subarray(0, 15 * SMALL.width);
      const level = mean(rows, [0, 15]);
      return Array.from(rows, (v) => v / level);
    };
    const meanAbsDiff = (a: number[], b: number[]) => a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;
    const first = wall(generateSyntheticVideo({ ...SMALL, seed: 1, frames: 1 }));

    expect(meanAbsDiff(first, wall(generateSyntheticVideo({ ...SMALL, seed: 2, frames: 1 })))).toBeLessThan(0.05);
    expect(meanAbsDiff(first, wall(generateSyntheticVideo({ ...SMALL, seed: 1, scene: 2, frames: 1 })))).toBeGreaterThan(0.1);
  });

  it('labels exactly the frames of its events', () => {
    const expected = new Uint8Array(700);
    for (const { startFrame, endFrame } of labelled.events) expected.fill(1, startFrame, endFrame + 1);
    expect(labelled.events.map((e) => e.kind)).toEqual(ANOMALY_KINDS);
    expect(Array.from(labelled.labels)).toEqual(Array.from(expected));
    for (let i = 1; i < labelled.events.length; i++) expect(labelled.events[i]!.startFrame).toBeGreaterThan(labelled.events[i - 1]!.endFrame + 1);
  });

  it('labels nothing in normal video', () => {
    const normal = generateSyntheticVideo({ ...SMALL, seed: 4, frames: 100 });
    expect(normal.events).toEqual([]);
    expect(normal.labels.every((label) => label === 0)).toBe(true);
    expect(normal.frames).toHaveLength(100);
    expect(normal.frames[0]).toHaveLength(80 * 60);
  });

  it('has people moving in normal video', () => {
    const normal = generateSyntheticVideo({ ...SMALL, seed: 5, frames: 21 });
    const moved = normal.frames[0]!.filter((v, i) => Math.abs(v - normal.frames[20]![i]!) > 40).length;
    expect(moved).toBeGreaterThan(20);
  });

  it('repeats one frame exactly while frozen', () => {
    const { startFrame, endFrame } = event('frozen');
    const still = labelled.frames[startFrame - 1]!;
    for (let t = startFrame; t <= endFrame; t++) expect(Buffer.compare(labelled.frames[t]!, still)).toBe(0);
    expect(Buffer.compare(labelled.frames[endFrame + 1]!, still)).not.toBe(0);
  });

  it('brightens the frame during a flash', () => {
    const { startFrame, endFrame } = event('flash');
    for (let t = startFrame; t <= endFrame; t++) expect(mean(labelled.frames[t]!)).toBeGreaterThan(mean(labelled.frames[startFrame - 1]!) + 40);
  });

  it('moves the fast object several times faster than walking', () => {
    const fast = event('fast-object');
    const against = event('against-flow');
    expect(fast.endFrame - fast.startFrame).toBeLessThan((against.endFrame - against.startFrame) / 3);
  });

  it('rejects too many events for the frames', () => {
    expect(() => generateSyntheticVideo({ ...SMALL, seed: 1, frames: 100, anomalies: ANOMALY_KINDS })).toThrow(
      /^Expected at least \d+ frames for 5 events at 10 fps for frames but received 100$/,
    );
  });

  it('rejects an unknown anomaly', () => {
    expect(() => generateSyntheticVideo({ seed: 1, frames: 100, anomalies: ['meteor' as 'flash'] })).toThrow(
      'Expected one of against-flow, fast-object, flash, frozen, corrupted for anomalies but received "meteor"',
    );
  });
});
