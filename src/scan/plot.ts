import sharp from 'sharp';

/** A stretch of frames, inclusive at both ends, e.g. an anomalous segment. */
export interface FrameRange {
  readonly startFrame: number;
  readonly endFrame: number;
}

export interface ScorePlotInput {
  readonly title: string;
  /** One score per frame; NaN marks a frame with no score (lost to decoding, or before the first full clip). */
  readonly scores: ArrayLike<number>;
  readonly fps: number;
  readonly threshold: number;
  readonly segments: readonly FrameRange[];
}

const WIDTH = 1200;
const HEIGHT = 360;
const MARGIN = { left: 64, right: 16, top: 36, bottom: 44 };

/**
 * Renders the score over time as a PNG: the score line, the threshold dashed, anomalous
 * segments shaded. Each pixel column draws the maximum score of the frames it covers, so that a
 * one-frame spike in a two-hour video still shows.
 */
export async function renderScorePlot(input: ScorePlotInput): Promise<Buffer> {
  const { scores, fps, threshold } = input;
  const frames = scores.length;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;

  // The axis spans the scores and the threshold with a margin, not from 0, because scores of
  // normal frames can sit well above 0 and their variation would flatten into one line. It goes
  // below 0 only for scores that do, such as standardised ones.
  let low = threshold;
  let high = threshold;
  for (let i = 0; i < frames; i++) {
    if (!Number.isFinite(scores[i])) continue;
    low = Math.min(low, scores[i]);
    high = Math.max(high, scores[i]);
  }
  const pad = high > low ? (high - low) * 0.08 : Math.max(Math.abs(high) * 0.1, 1e-6);
  const bottom = low >= 0 ? Math.max(0, low - pad) : low - pad;
  const top = high + pad;
  const x = (frame: number): number => MARGIN.left + (frames <= 1 ? 0 : (frame / (frames - 1)) * plotWidth);
  const y = (score: number): number => MARGIN.top + plotHeight - ((Math.min(Math.max(score, bottom), top) - bottom) / (top - bottom)) * plotHeight;

  const shading = input.segments
    .map((segment) => {
      const left = x(segment.startFrame);
      const width = Math.max(1.5, x(segment.endFrame) - left);
      return `<rect x="${left.toFixed(1)}" y="${MARGIN.top}" width="${width.toFixed(1)}" height="${plotHeight}" fill="#f4b6b6"/>`;
    })
    .join('');

  const thresholdY = y(threshold).toFixed(1);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}">
<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>
${shading}
${scoreLines(scores, plotWidth, x, y)}
<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${thresholdY}" y2="${thresholdY}" stroke="#c62828" stroke-width="1.5" stroke-dasharray="6 4"/>
<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#444"/>
${axisLabels(frames, fps, bottom, top, x, y)}
<text x="${MARGIN.left}" y="22" font-family="sans-serif" font-size="15" fill="#222">${escapeXml(input.title)}</text>
<text x="${WIDTH - MARGIN.right}" y="22" font-family="sans-serif" font-size="13" fill="#c62828" text-anchor="end">threshold ${formatNumber(threshold)}</text>
</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** Polylines of the per-column maximum; a gap of unscored frames breaks the line. */
function scoreLines(scores: ArrayLike<number>, plotWidth: number, x: (frame: number) => number, y: (score: number) => number): string {
  const frames = scores.length;
  const columns = Math.max(1, Math.min(frames, Math.round(plotWidth)));
  const lines: string[] = [];
  let points: string[] = [];

  for (let column = 0; column < columns; column++) {
    const first = Math.floor((column * frames) / columns);
    const last = Math.max(first, Math.floor(((column + 1) * frames) / columns) - 1);
    let peak = Number.NaN;
    let peakFrame = first;
    for (let frame = first; frame <= last; frame++) {
      if (Number.isFinite(scores[frame]) && !(scores[frame] <= peak)) {
        peak = scores[frame];
        peakFrame = frame;
      }
    }

    if (Number.isNaN(peak)) {
      if (points.length > 0) lines.push(points.join(' '));
      points = [];
      continue;
    }
    points.push(`${x(peakFrame).toFixed(1)},${y(peak).toFixed(1)}`);
  }
  if (points.length > 0) lines.push(points.join(' '));

  return lines.map((line) => `<polyline points="${line}" fill="none" stroke="#1f5fa8" stroke-width="1.3"/>`).join('\n');
}

function axisLabels(frames: number, fps: number, bottom: number, top: number, x: (frame: number) => number, y: (score: number) => number): string {
  const labels: string[] = [];
  const duration = frames / fps;
  const step = niceStep(duration / 8);
  for (let seconds = 0; seconds <= duration + 1e-9; seconds += step) {
    const px = x(Math.min(frames - 1, seconds * fps)).toFixed(1);
    labels.push(`<text x="${px}" y="${HEIGHT - MARGIN.bottom + 18}" font-family="sans-serif" font-size="12" fill="#444" text-anchor="middle">${formatTime(seconds)}</text>`);
  }
  for (const fraction of [0, 0.5, 1]) {
    const value = bottom + (top - bottom) * fraction;
    labels.push(`<text x="${MARGIN.left - 6}" y="${(y(value) + 4).toFixed(1)}" font-family="sans-serif" font-size="12" fill="#444" text-anchor="end">${formatNumber(value)}</text>`);
  }
  labels.push(`<text x="${(MARGIN.left + (WIDTH - MARGIN.right)) / 2}" y="${HEIGHT - 8}" font-family="sans-serif" font-size="12" fill="#444" text-anchor="middle">time</text>`);
  return labels.join('\n');
}

/** Returns a tick spacing of 1, 2 or 5 times a power of ten, at least `raw` seconds. */
function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const multiple of [1, 2, 5, 10]) if (multiple * power >= raw) return multiple * power;
  return 10 * power;
}

/** Seconds as m:ss, or h:mm:ss from an hour up; fractions of a second only for short clips. */
export function formatTime(seconds: number): string {
  const whole = Math.floor(seconds);
  const fraction = seconds - whole;
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const tail = fraction > 1e-6 ? `${(s + fraction).toFixed(1).padStart(4, '0')}` : String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${tail}` : `${m}:${tail}`;
}

function formatNumber(value: number): string {
  if (value === 0) return '0';
  return Math.abs(value) >= 0.01 && Math.abs(value) < 1000 ? value.toPrecision(3) : value.toExponential(2);
}

/** Escapes text for an SVG text node or attribute. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (character) => `&#${character.charCodeAt(0)};`);
}
