/**
 * The bench's table: one row per measurement with the project's figure, PyTorch's, their
 * ratio and the GFLOP/s of each side. Pure functions, so tests check them without timing.
 */

export interface BenchRow {
  readonly measurement: string;
  /** The project's figure, formatted with its unit. */
  readonly project: string;
  /** PyTorch's figure, or '' when there is none for this row. */
  readonly torch?: string;
  /** Project time over PyTorch time: above 1 means the project is slower. */
  readonly ratio?: number;
  readonly projectGflops?: number;
  readonly torchGflops?: number;
  /** Target of the row with its verdict, e.g. "ratio <= 1.2: met". */
  readonly target?: string;
  /** Quality figures of the model, e.g. "psnr25 31.09". */
  readonly quality?: string;
}

const HEADERS = ['measurement', 'project', 'PyTorch', 'ratio', 'GFLOP/s project', 'GFLOP/s PyTorch', 'target', 'quality'] as const;

export function formatNumber(value: number | undefined, digits = 2): string {
  if (value === undefined || !Number.isFinite(value)) return '';
  return value.toFixed(digits);
}

/** Project time over reference time, or undefined when either is missing. */
export function timeRatio(projectSeconds: number | undefined, torchSeconds: number | undefined): number | undefined {
  if (projectSeconds === undefined || torchSeconds === undefined || !(torchSeconds > 0)) return undefined;
  return projectSeconds / torchSeconds;
}

export interface TargetCheck {
  readonly met: boolean;
  readonly text: string;
}

/** "at most" check of a figure against a limit, e.g. a time ratio against 1.2. */
export function atMost(value: number | undefined, limit: number, label: string, unit = ''): TargetCheck | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  const met = value <= limit;
  return { met, text: `${label} <= ${limit}${unit}: ${met ? 'met' : `missed by ${(value - limit).toFixed(2)}${unit}`}` };
}

/** "at least" check, e.g. two-thread scaling against 1.7. */
export function atLeast(value: number | undefined, limit: number, label: string, unit = ''): TargetCheck | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  const met = value >= limit;
  return { met, text: `${label} >= ${limit}${unit}: ${met ? 'met' : `missed by ${(limit - value).toFixed(2)}${unit}`}` };
}

function cells(row: BenchRow): string[] {
  return [
    row.measurement,
    row.project,
    row.torch ?? '',
    row.ratio === undefined ? '' : `${formatNumber(row.ratio)}x`,
    formatNumber(row.projectGflops, 1),
    formatNumber(row.torchGflops, 1),
    row.target ?? '',
    row.quality ?? '',
  ];
}

/** Formats a plain-text table with columns padded to their widest cell, leaving out columns that no row fills. */
export function formatTable(rows: readonly BenchRow[]): string {
  const table = [HEADERS as readonly string[], ...rows.map(cells)];
  const used = HEADERS.map((_, column) => table.slice(1).some((row) => row[column] !== ''));
  const columns = HEADERS.map((_, column) => column).filter((column) => column === 0 || used[column]);
  const widths = columns.map((column) => Math.max(...table.map((row) => row[column].length)));

  const line = (row: readonly string[]): string =>
    columns
      .map((column, index) => row[column].padEnd(widths[index]))
      .join(' | ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('-|-');
  return [line(table[0]), rule, ...table.slice(1).map(line)].join('\n') + '\n';
}

/** Formats the quality figures of a model's darkroom.json `validation` field, rounded, for one cell. */
export function formatQuality(validation: Readonly<Record<string, number>> | undefined, keys?: readonly string[]): string {
  if (validation === undefined) return '';
  const chosen = keys ?? Object.keys(validation).filter((key) => key !== 'loss');
  return chosen
    .filter((key) => typeof validation[key] === 'number')
    .map((key) => `${key} ${formatNumber(validation[key], Math.abs(validation[key]) < 1 ? 3 : 2)}`)
    .join(', ');
}
