/**
 * A time-series line chart drawn by uPlot on a canvas (loaded on demand: see TimeChart in
 * ./TimeChart.tsx, which also gives the text alternative). uPlot sizes and places its elements
 * through the CSSOM (`element.style.width = …`), which a CSP without 'unsafe-inline' allows; it
 * writes series names with textContent, so a name carrying markup stays text. Its style sheet is
 * a file of this chunk, served from 'self'.
 */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { TimeSeries } from './series';

const COLOURS = ['#0b57d0', '#b3261e', '#146c2e', '#7c4dff', '#a05a00', '#00687a'];
const HEIGHT = 220;

/** `span`: the time range to draw (ms since the epoch), else the data's own (a span of a second or less is drawn oddly). */
export default function LineChart(props: { series: TimeSeries; unit?: string; span?: { from: number; to: number } }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const data: uPlot.AlignedData = [
      props.series.times.map((ms) => ms / 1000),
      ...props.series.lines.map((line) => line.values.map((value) => value ?? null)),
    ];
    const plot = new uPlot(
      {
        width: Math.max(280, element.clientWidth),
        height: HEIGHT,
        series: [
          {},
          ...props.series.lines.map((line, index) => ({
            label: line.name,
            stroke: COLOURS[index % COLOURS.length],
            width: 2,
            spanGaps: false,
            ...(props.unit
              ? { value: (_: uPlot, v: number | null) => (v === null ? '—' : `${v.toLocaleString('en')} ${props.unit}`) }
              : {}),
          })),
        ],
        axes: [{ stroke: '#4a5361' }, { stroke: '#4a5361', size: 60 }],
        cursor: { drag: { x: false, y: false } },
        ...(props.span
          ? { scales: { x: { time: true, range: [props.span.from / 1000, props.span.to / 1000] as uPlot.Range.MinMax } } }
          : {}),
      },
      data,
      element,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, element.clientWidth), height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [props.series, props.unit, props.span]);
  return <div ref={box} className="line-chart" aria-hidden="true" />;
}
