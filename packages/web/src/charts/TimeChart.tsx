/**
 * A time chart with its text alternative: a caption that sums each line up (range and latest
 * value, what a screen reader hears), and the numbers as a table behind a disclosure. The drawing
 * itself (uPlot, ./LineChart.tsx) is its own chunk, loaded the first time a chart is shown, so
 * the console's first page does not carry it.
 */
import { lazy, Suspense } from 'react';
import { summarise, type TimeSeries } from './series';

const LineChart = lazy(() => import('./LineChart'));

export function TimeChart(props: {
  title: string;
  series: TimeSeries;
  unit?: string;
  testId?: string;
  span?: { from: number; to: number };
}) {
  const summary = summarise(props.series);
  const time = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  return (
    <figure className="chart" data-testid={props.testId}>
      <figcaption>
        <span className="visually-hidden">{props.title}: </span>
        {summary}
      </figcaption>
      {props.series.times.length > 0 && (
        <>
          <Suspense fallback={<p className="loading">Loading the chart…</p>}>
            <LineChart series={props.series} unit={props.unit} span={props.span} />
          </Suspense>
          <details>
            <summary>{`${props.title} as a table`}</summary>
            <div className="table-wrap" role="region" aria-label={`${props.title} as a table`} tabIndex={0}>
              <table>
                <caption className="visually-hidden">{props.title}</caption>
                <thead>
                  <tr>
                    <th scope="col">Time (UTC)</th>
                    {props.series.lines.map((line) => (
                      <th scope="col" key={line.name}>
                        {line.name}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {props.series.times.map((at, row) => (
                    <tr key={at}>
                      <td>{time(at)}</td>
                      {props.series.lines.map((line) => (
                        <td key={line.name}>{line.values[row]?.toLocaleString('en') ?? '—'}</td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </details>
        </>
      )}
    </figure>
  );
}
