/**
 * The console's component kit: buttons, labelled fields, alerts, cards, a modal dialog on the
 * native <dialog> (focus kept inside, Escape closes), links for the router, and a horizontal bar
 * chart drawn as SVG, and the cells every list of audit entries shares. Every control has a
 * visible label and a visible focus ring (styles.css).
 */
import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { api, ApiError, type AuditEntry } from './api';
import { passkeysSupported, stepUpWithPasskey } from './account/passkey';
import { qrPath } from './qr';
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
  type?: 'text' | 'password' | 'email' | 'search' | 'datetime-local' | 'number';
  autoComplete?: string;
  inputMode?: 'numeric' | 'text';
  required?: boolean;
  hint?: string;
  name?: string;
  /** A multi-line field (JSON, notes) of this many rows instead of one line. */
  rows?: number;
}) {
  const id = useId();
  const described = props.hint ? `${id}-hint` : undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      {props.rows ? (
        <textarea
          id={id}
          name={props.name}
          rows={props.rows}
          value={props.value}
          required={props.required}
          spellCheck={false}
          aria-describedby={described}
          onChange={(event) => props.onChange(event.target.value)}
        />
      ) : (
        <input
          id={id}
          name={props.name}
          type={props.type ?? 'text'}
          value={props.value}
          autoComplete={props.autoComplete}
          inputMode={props.inputMode}
          required={props.required}
          aria-describedby={described}
          onChange={(event) => props.onChange(event.target.value)}
        />
      )}
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

/** A QR code drawn as one SVG path (no canvas, no inline style, no data URI). */
export function QrCode(props: { value: string; label: string }) {
  const { size, path } = qrPath(props.value);
  return (
    <svg className="qr" viewBox={`0 0 ${size} ${size}`} role="img" aria-label={props.label} shapeRendering="crispEdges">
      <rect width={size} height={size} className="qr-light" />
      <path d={path} className="qr-dark" />
    </svg>
  );
}

/** What a failed call says to the operator: the API's message, or that the platform was out of reach. */
export function messageOf(caught: unknown): string {
  return caught instanceof ApiError ? caught.message : 'The platform could not be reached; try again';
}

/**
 * A dangerous action behind a modal confirmation. With `stepUp`, the person re-proves a factor
 * (TOTP code, or the password without an authenticator, through POST /auth/step-up; or one of
 * their passkeys) first; the action runs only once that passed, and an error keeps the dialog
 * open with the API's message.
 */
export function ConfirmDialog(props: {
  title: string;
  open: boolean;
  onClose: () => void;
  confirmLabel: string;
  onConfirm: () => Promise<void>;
  stepUp?: boolean;
  variant?: 'primary' | 'danger';
  children: ReactNode;
}) {
  const [code, setCode] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const confirm = async (stepUp: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      if (props.stepUp) await stepUp();
      await props.onConfirm();
      setCode('');
      setPassword('');
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void confirm(() => api('POST', '/auth/step-up', code ? { code } : { password }));
  };

  return (
    <Dialog title={props.title} open={props.open} onClose={props.onClose}>
      <form onSubmit={submit}>
        {props.children}
        {props.stepUp && (
          <p>Confirm it is you: your authentication code (or your password if you have no authenticator), or one of your passkeys.</p>
        )}
        {error && <Alert>{error}</Alert>}
        {props.stepUp && (
          <>
            <Field label="Authentication code" value={code} onChange={setCode} inputMode="numeric" autoComplete="one-time-code" />
            <Field label="Password" type="password" value={password} onChange={setPassword} autoComplete="current-password" />
          </>
        )}
        <div className="actions">
          <Button variant="secondary" onClick={props.onClose}>
            Cancel
          </Button>
          {props.stepUp && passkeysSupported() && (
            <Button variant="secondary" disabled={busy} onClick={() => void confirm(stepUpWithPasskey)}>
              Use a passkey
            </Button>
          )}
          <Button type="submit" variant={props.variant ?? 'danger'} disabled={busy || (props.stepUp === true && !code && !password)}>
            {props.confirmLabel}
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

/**
 * One of a page's actions, each described in a table (its label, what it does), behind
 * ConfirmDialog: open while `action` is set, titled "<label> <subject>?", saying what the action
 * does. `onConfirm` runs the chosen action (and closes the dialog when it is done).
 */
export function ConfirmAction<A extends string>(props: {
  action: A | null;
  actions: Record<A, { label: string; says: string }>;
  subject: string;
  onClose: () => void;
  onConfirm: (action: A) => Promise<void>;
  stepUp?: boolean;
  variant?: 'primary' | 'danger';
}) {
  const { action, actions } = props;
  return (
    <ConfirmDialog
      title={action ? `${actions[action].label} ${props.subject}?` : ''}
      open={action !== null}
      onClose={props.onClose}
      confirmLabel={action ? actions[action].label : ''}
      stepUp={props.stepUp}
      variant={props.variant}
      onConfirm={() => props.onConfirm(action!)}
    >
      <p>{action && actions[action].says}</p>
    </ConfirmDialog>
  );
}

/** Keyset paging over an API cursor: a stack of the cursors seen gives "Previous". */
function useCursorStack<C>(): CursorStack<C> {
  const [cursors, setCursors] = useState<(C | null)[]>([null]);
  return {
    cursor: cursors[cursors.length - 1] ?? null,
    page: cursors.length,
    reset: () => setCursors([null]),
    next: (cursor: C | null) => {
      if (cursor !== null) setCursors([...cursors, cursor]);
    },
    previous: () => setCursors(cursors.length > 1 ? cursors.slice(0, -1) : cursors),
  };
}

/** The stack of cursors behind a paged list: `cursor` and `page` are those asked for, which may still be loading. */
export interface CursorStack<C> {
  cursor: C | null;
  page: number;
  reset: () => void;
  next: (cursor: C | null) => void;
  previous: () => void;
}

/** A page of a list as the API answers it, with the number it was asked for. */
export interface ShownPage<C, T extends { nextCursor: C | null }> {
  rows: T;
  number: number;
}

/**
 * A list paged by an API cursor. `load` fetches the page at a cursor (a callback that changes when
 * the list's filters do); it runs when the cursor or `load` changes, on `reload()`, and every
 * `refreshMs` when given. The page shown keeps the number it was asked as, so "Page 1" is never
 * written above page 2's rows while page 1 loads, and an answer overtaken by a newer request is
 * dropped, not shown.
 */
export function useCursorPages<C, T extends { nextCursor: C | null }>(
  load: (cursor: C | null) => Promise<T>,
  onError: (message: string) => void,
  refreshMs?: number,
): { paging: CursorStack<C>; shown: ShownPage<C, T> | null; reload: () => void } {
  const paging = useCursorStack<C>();
  const [shown, setShown] = useState<ShownPage<C, T> | null>(null);
  const [version, setVersion] = useState(0);
  const { cursor, page: number } = paging;
  useEffect(() => {
    let current = true;
    const run = () =>
      load(cursor).then(
        (rows) => current && setShown({ rows, number }),
        (caught: unknown) => current && onError(messageOf(caught)),
      );
    void run();
    const timer = refreshMs ? setInterval(run, refreshMs) : undefined;
    return () => {
      current = false;
      clearInterval(timer);
    };
  }, [load, cursor, number, version, refreshMs, onError]);
  return { paging, shown, reload: () => setVersion((v) => v + 1) };
}

/** Previous and Next under a list paged by `useCursorPages` (both wait while a page loads), and the number of the page shown. */
export function Pager<C, T extends { nextCursor: C | null }>(props: { paging: CursorStack<C>; shown: ShownPage<C, T> }) {
  const { paging, shown } = props;
  const nextCursor = shown.rows.nextCursor;
  // While another page loads, the cursors are not those of the rows shown: wait for it.
  const loading = paging.page !== shown.number;
  return (
    <nav className="pager" aria-label="Pages">
      <Button variant="secondary" disabled={loading || paging.page === 1} onClick={paging.previous}>
        Previous
      </Button>
      <span>Page {shown.number}</span>
      <Button variant="secondary" disabled={loading || nextCursor === null} onClick={() => paging.next(nextCursor)}>
        Next
      </Button>
    </nav>
  );
}

/** A timestamp as the operator reads it: date and minutes in UTC, the full ISO value on hover. */
export function When(props: { at: string | null; never?: string }) {
  if (!props.at) return <>{props.never ?? '—'}</>;
  return (
    <time dateTime={props.at} title={props.at}>
      {props.at.slice(0, 16).replace('T', ' ')} UTC
    </time>
  );
}

/** A table's scroll box on narrow screens: focusable and named, so a keyboard user can scroll it too. */
export function ScrollBox(props: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" role="region" aria-label={props.label} tabIndex={0}>
      {props.children}
    </div>
  );
}

/** A data table in its scroll box: a caption for screen readers, column headers ('' names a visually hidden "Actions" column), rows as children. */
export function Table(props: { label: string; caption: string; columns: string[]; children: ReactNode }) {
  return (
    <ScrollBox label={props.label}>
      <table>
        <caption className="visually-hidden">{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((column, index) => (
              <th scope="col" key={index}>
                {column || <span className="visually-hidden">Actions</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </ScrollBox>
  );
}

/** The cells an audit entry's row opens with, on every page that lists entries: sequence number, time, action. */
export function AuditEntryCells(props: { entry: AuditEntry }) {
  return (
    <>
      <td>{props.entry.seq}</td>
      <td>
        <When at={props.entry.ts} />
      </td>
      <td>
        <code>{props.entry.action}</code>
      </td>
    </>
  );
}

/** Who acted, for an audit entry's actor cell: its type and ID, the ID cut to `idChars` where the table is narrow. */
export function auditActor(actor: AuditEntry['actor'], idChars?: number): string {
  if (!actor.id) return actor.type;
  return `${actor.type} ${idChars === undefined ? actor.id : actor.id.slice(0, idChars)}`;
}
