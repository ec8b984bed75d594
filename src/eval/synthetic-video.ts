/**
 * A seeded generator of labelled grey video from an imaginary fixed camera over a walkway, for
 * training and evaluating the video anomaly scanner without real footage.
 *
 * The frames show a static textured background with mild sensor noise and a slow drift of the
 * global illumination. Pedestrians walk left to right along the walkway at ordinary speeds.
 * Anomalous events happen at known frames, and each frame is labelled 1 while one is visible.
 * The background depends only on `scene`, so that videos with different seeds come from the
 * same camera, as a scanner's training and test videos do.
 */
import { invalidOption } from '../errors.js';
import { SeededRandom } from '../train/random.js';

export type AnomalyKind = 'against-flow' | 'fast-object' | 'flash' | 'frozen' | 'corrupted';

/**
 * - against-flow: a pedestrian walking right to left, against everyone else.
 * - fast-object: a cyclist or a car along the walkway at about 4 to 8 times walking speed.
 * - flash: the whole frame jumps in brightness for a few frames.
 * - frozen: the picture stops, repeating one frame exactly, then jumps ahead.
 * - corrupted: blocks of noise and torn, shifted rows, as from a damaged stream.
 */
export const ANOMALY_KINDS: readonly AnomalyKind[] = Object.freeze(['against-flow', 'fast-object', 'flash', 'frozen', 'corrupted']);

export interface SyntheticVideoOptions {
  readonly seed: number;
  readonly frames: number;
  /** Seed of the background, i.e. the camera. Default 1. */
  readonly scene?: number;
  readonly width?: number;
  readonly height?: number;
  readonly fps?: number;
  /** Events in the order they happen. Without any (the default), the video is normal. */
  readonly anomalies?: readonly AnomalyKind[];
}

/** The frames of one event. endFrame is inclusive. */
export interface SyntheticEvent {
  readonly kind: AnomalyKind;
  readonly startFrame: number;
  readonly endFrame: number;
}

export interface SyntheticVideo {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  /** One 8-bit grey frame per entry, width * height values, row by row. */
  readonly frames: Uint8Array[];
  /** 1 for a frame during an event, 0 otherwise. */
  readonly labels: Uint8Array;
  readonly events: SyntheticEvent[];
}

const SENSOR_NOISE = 2.5;
/** Seconds for a pedestrian to cross the frame, slowest and fastest. */
const CROSSING_SECONDS: readonly [number, number] = [16, 9];
/** Seconds for a cyclist or car to cross the frame, about 4 to 8 times walking speed. */
const FAST_CROSSING_SECONDS: readonly [number, number] = [2.8, 1.6];
/** Pedestrians on screen on average. */
const CROWD = 4;
const MIN_GAP_SECONDS = 3;

interface Walker {
  x: number;
  y: number;
  speed: number;
  height: number;
  shirt: number;
  trousers: number;
  kind: 'pedestrian' | 'cyclist' | 'car';
  /** The event that this object is, if any. */
  event?: number;
}

interface Scene {
  readonly width: number;
  readonly height: number;
  readonly background: Float32Array;
  readonly walkwayTop: number;
  readonly walkwayBottom: number;
}

function checkInteger(value: number, min: number, max: number, option: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidOption(`an integer from ${min} to ${max}`, option, value);
  }
}

/** Smooth random texture: a sum of bilinearly interpolated random grids, coarse to fine. */
function valueNoise(width: number, height: number, random: SeededRandom, cells: number[]): Float32Array {
  const result = new Float32Array(width * height);
  for (const [octave, count] of cells.entries()) {
    const gridWidth = count + 2;
    const gridHeight = Math.ceil((count * height) / width) + 2;
    const grid = Float32Array.from({ length: gridWidth * gridHeight }, () => random.next() - 0.5);
    const amplitude = 1 / (octave + 1);
    for (let y = 0; y < height; y++) {
      const gy = (y / width) * count;
      const y0 = Math.floor(gy);
      const fy = gy - y0;
      for (let x = 0; x < width; x++) {
        const gx = (x / width) * count;
        const x0 = Math.floor(gx);
        const fx = gx - x0;
        const top = grid[y0 * gridWidth + x0]! * (1 - fx) + grid[y0 * gridWidth + x0 + 1]! * fx;
        const bottom = grid[(y0 + 1) * gridWidth + x0]! * (1 - fx) + grid[(y0 + 1) * gridWidth + x0 + 1]! * fx;
        result[y * width + x] += amplitude * (top * (1 - fy) + bottom * fy);
      }
    }
  }
  return result;
}

/** Builds the background: a wall at the top, a paved walkway with tile joints in the middle, grass below, and a few fixtures. */
function buildScene(width: number, height: number, seed: number): Scene {
  const random = new SeededRandom(seed);
  const texture = valueNoise(width, height, random, [4, 12, 40]);
  const walkwayTop = Math.round(height * 0.42);
  const walkwayBottom = Math.round(height * 0.82);
  const tile = Math.max(4, Math.round(height / 12));
  const background = new Float32Array(width * height);

  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      let value: number;
      if (y < walkwayTop) value = 95 + 60 * texture[i]! + (x % Math.max(8, tile * 2) < 2 ? -18 : 0);
      else if (y < walkwayBottom) value = 165 + 35 * texture[i]! - ((x + y) % tile === 0 || y % tile === 0 ? 22 : 0);
      else value = 110 + 70 * texture[i]!;
      background[i] = value;
    }
  }

  const fixtures = 2 + random.nextInt(3);
  for (let k = 0; k < fixtures; k++) {
    const w = Math.round(width * (0.03 + 0.08 * random.next()));
    const h = Math.round(height * (0.05 + 0.12 * random.next()));
    const x0 = random.nextInt(width - w);
    const y0 = walkwayBottom - Math.round(h / 2) + random.nextInt(Math.max(1, height - walkwayBottom));
    const shade = 40 + 150 * random.next();
    fillRect(background, width, height, x0, Math.min(y0, height - h), w, h, shade);
  }
  return { width, height, background, walkwayTop, walkwayBottom };
}

function fillRect(image: Float32Array, width: number, height: number, x: number, y: number, w: number, h: number, value: number): boolean {
  const x0 = Math.max(0, Math.round(x));
  const y0 = Math.max(0, Math.round(y));
  const x1 = Math.min(width, Math.round(x + w));
  const y1 = Math.min(height, Math.round(y + h));
  for (let row = y0; row < y1; row++) image.fill(value, row * width + x0, row * width + Math.max(x0, x1));
  return x1 > x0 && y1 > y0;
}

/** Draws a walker with its feet at (x, y), and returns whether any of it is inside the frame. */
function drawWalker(image: Float32Array, scene: Scene, walker: Walker): boolean {
  const { width, height } = scene;
  const h = walker.height;
  const draw = (dx: number, dy: number, w: number, hh: number, value: number) => fillRect(image, width, height, walker.x + dx, walker.y + dy, w, hh, value);

  if (walker.kind === 'car') {
    const length = h * 2.6;
    let seen = draw(-length / 2, -h * 0.75, length, h * 0.5, walker.shirt);
    seen = draw(-length / 4, -h * 1.1, length / 2, h * 0.4, walker.trousers) || seen;
    draw(-length / 2.6, -h * 0.3, h * 0.3, h * 0.3, 25);
    draw(length / 2.6 - h * 0.3, -h * 0.3, h * 0.3, h * 0.3, 25);
    return seen;
  }

  const bodyWidth = Math.max(2, h * 0.38);
  // Legs swing with the distance walked, a stride about half the body height.
  const swing = Math.sin((walker.x / (h * 0.5)) * Math.PI) * bodyWidth * 0.3;
  let seen = false;
  if (walker.kind === 'cyclist') {
    seen = draw(-h * 0.55, -h * 0.3, h * 0.3, h * 0.3, 30) || seen;
    seen = draw(h * 0.25, -h * 0.3, h * 0.3, h * 0.3, 30) || seen;
    seen = draw(-h * 0.3, -h * 0.35, h * 0.6, h * 0.1, 60) || seen;
    seen = draw(-bodyWidth / 2, -h * 1.05, bodyWidth, h * 0.55, walker.shirt) || seen;
    return draw(-bodyWidth * 0.35, -h * 1.3, bodyWidth * 0.7, h * 0.22, 185) || seen;
  }
  seen = draw(-bodyWidth / 2 + swing, -h * 0.45, bodyWidth * 0.45, h * 0.45, walker.trousers) || seen;
  seen = draw(bodyWidth * 0.05 - swing, -h * 0.45, bodyWidth * 0.45, h * 0.45, walker.trousers) || seen;
  seen = draw(-bodyWidth / 2, -h * 0.82, bodyWidth, h * 0.4, walker.shirt) || seen;
  return draw(-bodyWidth * 0.35, -h, bodyWidth * 0.7, h * 0.2, 185) || seen;
}

function newWalker(scene: Scene, random: SeededRandom, speedUnit: number): Walker {
  const { walkwayTop, walkwayBottom, height } = scene;
  const y = walkwayTop + (walkwayBottom - walkwayTop) * (0.15 + 0.85 * random.next());
  // Farther from the camera (higher in the frame) looks smaller.
  const depth = (y - walkwayTop) / (walkwayBottom - walkwayTop);
  const speed = speedUnit * (1 / CROSSING_SECONDS[0] + (1 / CROSSING_SECONDS[1] - 1 / CROSSING_SECONDS[0]) * random.next());
  return {
    x: 0,
    y,
    speed: speed * (0.8 + 0.4 * depth),
    height: height * 0.13 * (0.75 + 0.45 * depth),
    shirt: 20 + 215 * random.next(),
    trousers: 20 + 100 * random.next(),
    kind: 'pedestrian',
  };
}

interface PlannedEvent {
  readonly kind: AnomalyKind;
  readonly start: number;
  /** Frames of an effect. Objects last until they leave the frame. */
  readonly length: number;
}

/** Returns the frames that an event lasts, or for objects an upper bound on their crossing. */
function eventLength(kind: AnomalyKind, fps: number, random: SeededRandom): number {
  switch (kind) {
    case 'against-flow':
      return Math.ceil(CROSSING_SECONDS[0] * 1.5 * fps) + 2;
    case 'fast-object':
      return Math.ceil(FAST_CROSSING_SECONDS[0] * 1.5 * fps) + 2;
    case 'flash':
      return Math.max(2, Math.round(fps * (0.3 + 0.5 * random.next())));
    case 'frozen':
      return Math.max(3, Math.round(fps * (2 + 2 * random.next())));
    case 'corrupted':
      return Math.max(2, Math.round(fps * (0.6 + 0.8 * random.next())));
  }
}

/** Spreads the events over the video with random gaps of at least MIN_GAP_SECONDS between them. */
function planEvents(kinds: readonly AnomalyKind[], frames: number, fps: number, random: SeededRandom): PlannedEvent[] {
  if (kinds.length === 0) return [];
  const lengths = kinds.map((kind) => eventLength(kind, fps, random));
  const minGap = Math.round(MIN_GAP_SECONDS * fps);
  const spare = frames - lengths.reduce((a, b) => a + b, 0) - minGap * (kinds.length + 1);
  if (spare < 0) throw invalidOption(`at least ${frames - spare} frames for ${kinds.length} events at ${fps} fps`, 'frames', frames);

  const weights = Array.from({ length: kinds.length + 1 }, () => 0.5 + random.next());
  const total = weights.reduce((a, b) => a + b, 0);
  const planned: PlannedEvent[] = [];
  let cursor = 0;
  for (const [i, kind] of kinds.entries()) {
    cursor += minGap + Math.floor((spare * weights[i]!) / total);
    planned.push({ kind, start: cursor, length: lengths[i]! });
    cursor += lengths[i]!;
  }
  return planned;
}

/** Overwrites random square blocks with noise or flat grey, and shifts every row below a tear. */
function corrupt(frame: Uint8Array, width: number, height: number, random: SeededRandom): void {
  const block = Math.max(4, Math.round(height / 15));
  for (let by = 0; by < height; by += block) {
    for (let bx = 0; bx < width; bx += block) {
      if (random.next() > 0.15) continue;
      const flat = random.next() < 0.5 ? random.nextInt(256) : -1;
      for (let y = by; y < Math.min(height, by + block); y++) {
        for (let x = bx; x < Math.min(width, bx + block); x++) frame[y * width + x] = flat >= 0 ? flat : random.nextInt(256);
      }
    }
  }

  const tear = random.nextInt(height);
  const shift = Math.round(width * (0.1 + 0.2 * random.next()));
  for (let y = tear; y < height; y++) {
    const row = frame.slice(y * width, (y + 1) * width);
    for (let x = 0; x < width; x++) frame[y * width + x] = row[(x + shift) % width]!;
  }
}

/**
 * Generates the video. The same options always give the same frames, labels and events.
 * Throws INVALID_OPTION when the events do not fit into `frames` with gaps between them.
 */
export function generateSyntheticVideo(options: SyntheticVideoOptions): SyntheticVideo {
  const { seed, frames, scene: sceneSeed = 1, width = 160, height = 120, fps = 10, anomalies = [] } = options;
  checkInteger(seed, 0, 2 ** 32 - 1, 'seed');
  checkInteger(sceneSeed, 0, 2 ** 32 - 1, 'scene');
  checkInteger(frames, 1, 1_000_000, 'frames');
  checkInteger(width, 32, 4096, 'width');
  checkInteger(height, 32, 4096, 'height');
  if (typeof fps !== 'number' || !(fps > 0 && fps <= 240)) throw invalidOption('a number above 0 and up to 240', 'fps', fps);
  for (const kind of anomalies) {
    if (!ANOMALY_KINDS.includes(kind)) throw invalidOption(`one of ${ANOMALY_KINDS.join(', ')}`, 'anomalies', kind);
  }

  const scene = buildScene(width, height, sceneSeed);
  const random = new SeededRandom(seed);
  const plan = planEvents(anomalies, frames, fps, random);
  // Speed in pixels per frame of an object that crosses the frame in one second.
  const speedUnit = width / fps;
  const spawnChance = CROWD / (((CROSSING_SECONDS[0] + CROSSING_SECONDS[1]) / 2) * fps);
  const driftPeriod = fps * (40 + 40 * random.next());
  const driftPhase = 2 * Math.PI * random.next();

  const walkers: Walker[] = [];
  const step = () => {
    for (const walker of walkers) walker.x += walker.speed;
    if (random.next() < spawnChance) {
      const walker = newWalker(scene, random, speedUnit);
      walker.x = -walker.height;
      walkers.push(walker);
    }
    for (let i = walkers.length - 1; i >= 0; i--) {
      const walker = walkers[i]!;
      if (walker.x > width + 3 * walker.height || walker.x < -4 * walker.height) walkers.splice(i, 1);
    }
  };
  // The video starts with people already on the walkway.
  for (let t = 0; t < (CROSSING_SECONDS[0] * fps) / 0.8; t++) step();

  const video: SyntheticVideo = { width, height, fps, frames: [], labels: new Uint8Array(frames), events: [] };
  const seen = plan.map(() => ({ first: -1, last: -1 }));
  const image = new Float32Array(width * height);
  let frozenFrame: Uint8Array | undefined;

  for (let t = 0; t < frames; t++) {
    step();
    const active = new Set<number>();
    for (const [index, event] of plan.entries()) {
      if (t === event.start && (event.kind === 'against-flow' || event.kind === 'fast-object')) walkers.push(eventWalker(event.kind, index, scene, random, speedUnit));
      if (t >= event.start && t < event.start + event.length) active.add(index);
    }

    const gain = 1 + 0.12 * Math.sin((2 * Math.PI * t) / driftPeriod + driftPhase);
    for (let i = 0; i < image.length; i++) image[i] = scene.background[i]! * gain;
    walkers.sort((a, b) => a.y - b.y);
    for (const walker of walkers) {
      if (drawWalker(image, scene, walker) && walker.event !== undefined) {
        const visible = seen[walker.event]!;
        if (visible.first < 0) visible.first = t;
        visible.last = t;
      }
    }

    const flash = [...active].some((index) => plan[index]!.kind === 'flash');
    const frame = new Uint8Array(width * height);
    for (let i = 0; i < frame.length; i++) {
      const value = image[i]! + SENSOR_NOISE * random.nextGaussian();
      frame[i] = Math.max(0, Math.min(255, Math.round(flash ? value * 1.35 + 50 : value)));
    }

    let frozen = false;
    for (const index of active) {
      const { kind } = plan[index]!;
      if (kind === 'corrupted') corrupt(frame, width, height, random);
      if (kind === 'frozen') frozen = true;
      if (kind !== 'against-flow' && kind !== 'fast-object') {
        seen[index]!.first = seen[index]!.first < 0 ? t : seen[index]!.first;
        seen[index]!.last = t;
      }
    }
    // A frozen picture repeats the last frame before the freeze, sensor noise and all.
    if (frozen) frozenFrame ??= video.frames[video.frames.length - 1] ?? frame;
    else frozenFrame = undefined;
    video.frames.push(frozen ? frozenFrame!.slice() : frame);
  }

  for (const [index, { first, last }] of seen.entries()) {
    if (first < 0) continue;
    video.events.push({ kind: plan[index]!.kind, startFrame: first, endFrame: last });
    video.labels.fill(1, first, last + 1);
  }
  return video;
}

function eventWalker(kind: 'against-flow' | 'fast-object', event: number, scene: Scene, random: SeededRandom, speedUnit: number): Walker {
  const walker = newWalker(scene, random, speedUnit);
  walker.event = event;
  if (kind === 'against-flow') {
    walker.speed = -walker.speed;
    walker.x = scene.width + walker.height;
    return walker;
  }
  walker.kind = random.next() < 0.5 ? 'cyclist' : 'car';
  walker.speed = speedUnit * (1 / FAST_CROSSING_SECONDS[0] + (1 / FAST_CROSSING_SECONDS[1] - 1 / FAST_CROSSING_SECONDS[0]) * random.next());
  walker.x = walker.kind === 'car' ? -1.3 * walker.height : -0.6 * walker.height;
  return walker;
}
