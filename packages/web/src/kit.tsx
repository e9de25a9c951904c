/**
 * The console's component kit: buttons, labelled fields, alerts, cards, a modal dialog on the
 * native <dialog> (focus kept inside, Escape closes), links for the router, and a horizontal bar
 * chart drawn as SVG. Every control has a visible label and a visible focus ring (styles.css).
 */
import { useEffect, useId, useRef, type ReactNode } from 'react';
import { navigate, BASE } from './router';

export function Button(props: {
  children: ReactNode;
  onClick?: () => void;
  type?: 'button' | 'submit';
  variant?: 'primary' | 'secondary' | 'danger';
  disabled?: boolean;
}) {
  return (
    <button
      type={props.type ?? 'button'}
      className={`btn btn-${props.variant ?? 'primary'}`}
      onClick={props.onClick}
      disabled={props.disabled}
    >
      {props.children}
    </button>
  );
}

export function Field(props: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  type?: 'text' | 'password' | 'email' | 'search';
  autoComplete?: string;
  inputMode?: 'numeric' | 'text';
  required?: boolean;
  hint?: string;
  name?: string;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        type={props.type ?? 'text'}
        value={props.value}
        autoComplete={props.autoComplete}
        inputMode={props.inputMode}
        required={props.required}
        aria-describedby={props.hint ? `${id}-hint` : undefined}
        onChange={(event) => props.onChange(event.target.value)}
      />
      {props.hint && (
        <p className="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      )}
    </div>
  );
}

export function Select(props: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  options: { value: string; label: string }[];
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <select id={id} value={props.value} onChange={(event) => props.onChange(event.target.value)}>
        {props.options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
    </div>
  );
}

export function Alert(props: { children: ReactNode; kind?: 'error' | 'info' }) {
  return (
    <div className={`alert alert-${props.kind ?? 'error'}`} role={props.kind === 'info' ? 'status' : 'alert'}>
      {props.children}
    </div>
  );
}

export function Card(props: { title: string; children: ReactNode }) {
  const id = useId();
  return (
    <section className="card" aria-labelledby={id}>
      <h2 id={id}>{props.title}</h2>
      {props.children}
    </section>
  );
}

export function Link(props: { to: string; children: ReactNode; className?: string; current?: boolean }) {
  return (
    <a
      href={`${BASE}${props.to}`}
      className={props.className}
      aria-current={props.current ? 'page' : undefined}
      onClick={(event) => {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

/** A modal dialog: opened with showModal() so the rest of the page is inert while it is up. */
export function Dialog(props: { title: string; open: boolean; onClose: () => void; children: ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  return (
    <dialog ref={ref} aria-labelledby={id} onClose={props.onClose} className="dialog">
      <h2 id={id}>{props.title}</h2>
      {props.open && props.children}
    </dialog>
  );
}

export interface Bar {
  label: string;
  value: number;
}

/** A horizontal bar chart in SVG with its numbers as text, and a table-like title for screen readers. */
export function BarChart(props: { title: string; bars: Bar[] }) {
  const max = Math.max(1, ...props.bars.map((bar) => bar.value));
  const row = 28;
  const labelWidth = 140;
  const width = 480;
  const height = Math.max(row, props.bars.length * row);
  const description = props.bars.map((bar) => `${bar.label}: ${bar.value}`).join(', ');
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`${props.title}: ${description || 'none'}`}
        preserveAspectRatio="xMinYMin meet"
      >
        {props.bars.map((bar, index) => {
          const barWidth = ((width - labelWidth - 70) * bar.value) / max;
          const y = index * row;
          return (
            <g key={bar.label}>
              <text x={0} y={y + 18} className="chart-label">
                {bar.label.length > 18 ? `${bar.label.slice(0, 17)}…` : bar.label}
              </text>
              <rect x={labelWidth} y={y + 5} width={Math.max(barWidth, 1)} height={row - 10} rx={3} className="chart-bar" />
              <text x={labelWidth + barWidth + 6} y={y + 18} className="chart-value">
                {bar.value.toLocaleString('en')}
              </text>
            </g>
          );
        })}
      </svg>
      {props.bars.length === 0 && <figcaption>No data</figcaption>}
    </figure>
  );
}
