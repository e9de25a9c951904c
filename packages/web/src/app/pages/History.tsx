/**
 * History: the device's numeric readings over a chosen range (`GET my/devices/:id/telemetry`, the
 * raw readings I may see, paged by cursor up to a cap) as a line each, drawn by the console's
 * time chart (src/charts: uPlot in its own chunk, loaded the first time a chart is shown, with a
 * text summary and the numbers as a table). Names and values are shown as text.
 */
import { useEffect, useMemo, useState } from 'react';
import { Alert, Button, Card, Select } from '../../kit';
import { TimeChart } from '../../charts/TimeChart';
import type { TimeSeries } from '../../charts/series';
import { my, type ReadingView } from '../api';
import { useAction } from '../ui';

const RANGES = [
  { value: '3600000', label: 'Last hour' },
  { value: '86400000', label: 'Last 24 hours' },
  { value: '604800000', label: 'Last 7 days' },
];
/** At most this many readings are drawn (10 pages of 500): enough for a phone's width. */
const PAGES = 10;

/** One line per name that has a number in the range; a reading without that name is a gap. */
export function seriesOfReadings(readings: ReadingView[]): TimeSeries {
  const numeric = readings.filter((reading) => Object.values(reading.values).some((value) => typeof value === 'number'));
  const names = [...new Set(numeric.flatMap((r) => Object.keys(r.values).filter((name) => typeof r.values[name] === 'number')))].sort();
  return {
    times: numeric.map((reading) => Date.parse(reading.ts)),
    lines: names.map((name) => ({
      name,
      values: numeric.map((reading) => {
        const value = reading.values[name];
        return typeof value === 'number' ? value : null;
      }),
    })),
  };
}

export function History(props: { id: string }) {
  const [range, setRange] = useState(RANGES[0]!.value);
  const [readings, setReadings] = useState<{ readings: ReadingView[]; span: { from: number; to: number } } | null>(null);
  const [round, setRound] = useState(0);
  const { busy, error, run } = useAction();

  useEffect(() => {
    void run(async () => {
      // A little past now: the device's clock may run somewhat ahead of this phone's.
      const to = new Date(Date.now() + 5 * 60_000);
      const from = new Date(to.getTime() - Number(range));
      const all: ReadingView[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < PAGES; page++) {
        const answer = await my.readings(props.id, from.toISOString(), to.toISOString(), cursor);
        all.push(...answer.readings);
        if (!answer.nextCursor) break;
        cursor = answer.nextCursor;
      }
      const last = all.length > 0 ? Date.parse(all[all.length - 1]!.ts) : 0;
      setReadings({ readings: all, span: { from: from.getTime(), to: Math.max(Date.now(), last) } });
    });
  }, [props.id, range, round, run]);

  const series = useMemo(() => (readings ? seriesOfReadings(readings.readings) : null), [readings]);
  const label = RANGES.find((r) => r.value === range)!.label.toLowerCase();
  return (
    <Card title="History">
      <div className="filters">
        <Select label="Range" value={range} onChange={setRange} options={RANGES} />
        <Button variant="secondary" disabled={busy} onClick={() => setRound((n) => n + 1)}>
          Refresh
        </Button>
      </div>
      {error && <Alert>{error.message}</Alert>}
      {series && <TimeChart title={`Readings, ${label}`} series={series} testId="history" span={readings!.span} />}
    </Card>
  );
}
