/** The shape every time chart draws: shared times (ms since the epoch) and one value (or a gap) per line at each. */
export interface TimeSeries {
  times: number[];
  lines: { name: string; values: (number | null)[] }[];
}

/** "min to max, latest x" for each line: what a screen reader hears instead of the drawing. */
export function summarise(series: TimeSeries): string {
  if (series.times.length === 0 || series.lines.length === 0) return 'no data';
  return series.lines
    .map((line) => {
      const numbers = line.values.filter((value): value is number => value !== null);
      if (numbers.length === 0) return `${line.name}: no value`;
      const round = (n: number) => Number(n.toPrecision(4)).toLocaleString('en');
      return `${line.name}: ${round(Math.min(...numbers))} to ${round(Math.max(...numbers))}, latest ${round(numbers.at(-1)!)}`;
    })
    .join('; ');
}
