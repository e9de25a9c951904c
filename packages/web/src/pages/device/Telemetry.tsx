/**
 * A device's telemetry: each numeric value as a line over a chosen range (the API's downsampled
 * buckets, their average), with the chart's text alternative, and the latest value of every name
 * as a table (numbers and text alike; a name or value carrying markup is shown as text).
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, query, type LatestView, type TelemetryAggregateView } from '../../api';
import { Alert, Button, Card, messageOf, Select, Table, When } from '../../kit';
import { TimeChart } from '../../charts/TimeChart';
import type { TimeSeries } from '../../charts/series';

/** Ranges offered, each with a bucket width that keeps the chart to about 60-100 points. */
export const RANGES = [
  { value: '1h', label: 'Last hour', ms: 3_600_000, interval: '1m' },
  { value: '6h', label: 'Last 6 hours', ms: 6 * 3_600_000, interval: '5m' },
  { value: '24h', label: 'Last 24 hours', ms: 24 * 3_600_000, interval: '15m' },
  { value: '7d', label: 'Last 7 days', ms: 7 * 24 * 3_600_000, interval: '2h' },
] as const;

/** The buckets' averages as lines, one per value name that had a number in the range (buckets of text values only are left out). */
export function seriesOf(aggregate: TelemetryAggregateView): TimeSeries {
  const numeric = (bucket: TelemetryAggregateView['buckets'][number]) =>
    Object.keys(bucket.values).filter((name) => bucket.values[name]!.avg !== undefined);
  const buckets = aggregate.buckets.filter((bucket) => numeric(bucket).length > 0);
  const names = [...new Set(buckets.flatMap(numeric))].sort();
  return {
    times: buckets.map((bucket) => Date.parse(bucket.start)),
    lines: names.map((name) => ({ name, values: buckets.map((bucket) => bucket.values[name]?.avg ?? null) })),
  };
}

export function Telemetry(props: { deviceId: string }) {
  const base = `/devices/${encodeURIComponent(props.deviceId)}/telemetry`;
  const [range, setRange] = useState<(typeof RANGES)[number]['value']>('1h');
  const [aggregate, setAggregate] = useState<TelemetryAggregateView | null>(null);
  const [latest, setLatest] = useState<LatestView | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    const chosen = RANGES.find((r) => r.value === range)!;
    // A little past now: a device's clock (or the platform's) may run somewhat ahead of this browser's.
    const to = Date.now() + 15 * 60_000;
    try {
      const [buckets, last] = await Promise.all([
        api<TelemetryAggregateView>(
          'GET',
          `${base}/aggregate${query({ from: new Date(to - chosen.ms).toISOString(), to: new Date(to).toISOString(), interval: chosen.interval })}`,
        ),
        api<LatestView>('GET', `${base}/latest`),
      ]);
      setAggregate(buckets);
      setLatest(last);
      setError(null);
    } catch (caught) {
      setError(messageOf(caught));
    }
  }, [base, range]);
  useEffect(() => {
    void load();
  }, [load]);

  const series = useMemo(() => (aggregate ? seriesOf(aggregate) : null), [aggregate]);
  const names = Object.keys(latest?.values ?? {}).sort();
  return (
    <Card title="Telemetry">
      <div className="filters">
        <Select label="Range" value={range} onChange={(value) => setRange(value as typeof range)} options={[...RANGES]} />
        <Button variant="secondary" onClick={() => void load()}>
          Refresh
        </Button>
      </div>
      {error && <Alert>{error}</Alert>}
      {series && (
        <TimeChart
          title={`Telemetry, ${RANGES.find((r) => r.value === range)!.label.toLowerCase()}, average per ${aggregate!.interval}`}
          series={series}
          testId="telemetry-chart"
        />
      )}
      {latest && (
        <Table label="Latest values" caption="The latest value of each name" columns={['Name', 'Latest value', 'At']}>
          {names.map((name) => (
            <tr key={name} data-testid="latest-value">
              <th scope="row">
                <code>{name}</code>
              </th>
              <td>
                <code>{JSON.stringify(latest.values[name]!.value)}</code>
              </td>
              <td>
                <When at={latest.values[name]!.ts} />
              </td>
            </tr>
          ))}
        </Table>
      )}
      {latest && names.length === 0 && <p>No reading yet.</p>}
    </Card>
  );
}
