import { getLogLevel } from './log.js';

/**
 * A progress bar for long work on stderr. On a terminal it redraws one line; elsewhere (CI, a
 * log file) it prints a plain line at most every `plainIntervalMs` so logs stay readable.
 * It prints nothing when the log level is above info (--quiet).
 */
export interface ProgressOptions {
  readonly label: string;
  readonly total: number;
  readonly unit?: string;
  readonly stream?: NodeJS.WriteStream;
  readonly plainIntervalMs?: number;
}

export class ProgressBar {
  private readonly options: Required<Omit<ProgressOptions, 'stream'>> & { stream: NodeJS.WriteStream };
  private readonly startedAt = Date.now();
  private done = 0;
  private startCount = 0;
  private lastPlainAt = 0;
  private lastPlainLine = '';
  private fields = '';

  constructor(options: ProgressOptions) {
    this.options = { unit: 'it', plainIntervalMs: 10_000, stream: process.stderr, ...options };
  }

  /** Marks where a resumed run starts, so the rate and ETA count only this run's work. */
  resumeFrom(count: number): void {
    this.done = count;
    this.startCount = count;
  }

  update(done: number, fields: Record<string, string | number> = {}): void {
    this.done = done;
    this.fields = Object.entries(fields)
      .map(([key, value]) => `${key} ${typeof value === 'number' ? formatNumber(value) : value}`)
      .join('  ');
    this.render(false);
  }

  finish(): void {
    this.render(true);
    if (this.options.stream.isTTY && (getLogLevel() === 'debug' || getLogLevel() === 'info')) this.options.stream.write('\n');
  }

  private render(force: boolean): void {
    if (getLogLevel() !== 'debug' && getLogLevel() !== 'info') return;
    const { label, total, unit, stream } = this.options;
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const rate = elapsed > 0 ? (this.done - this.startCount) / elapsed : 0;
    const remaining = rate > 0 ? (total - this.done) / rate : Infinity;
    const fraction = total > 0 ? Math.min(1, this.done / total) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const line = `${label} [${bar}] ${this.done}/${total} ${(fraction * 100).toFixed(0)}%  ${formatRate(rate, unit)}  ETA ${formatDuration(remaining)}  ${this.fields}`;

    if (stream.isTTY) {
      stream.write(`\r${line.slice(0, (stream.columns ?? 120) - 1)}\x1b[K`);
      return;
    }
    // The rate and ETA change every call, so repeats are recognised by the count alone.
    const counted = `${this.done}/${total}`;
    const now = Date.now();
    if ((force && counted !== this.lastPlainLine) || now - this.lastPlainAt >= this.options.plainIntervalMs) {
      this.lastPlainAt = now;
      this.lastPlainLine = counted;
      stream.write(line + '\n');
    }
  }
}

function formatNumber(value: number): string {
  // Counts (faces found, frames swapped) print as counts, not as 3.00.
  if (!Number.isFinite(value) || Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(1) : Math.abs(value) >= 1 ? value.toFixed(2) : value.toPrecision(3);
}

function formatRate(rate: number, unit: string): string {
  if (rate <= 0) return `- ${unit}/s`;
  return rate >= 1 ? `${rate.toFixed(2)} ${unit}/s` : `${(1 / rate).toFixed(2)} s/${unit}`;
}

/** Formats seconds as h:mm:ss or m:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}
