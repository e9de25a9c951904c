/**
 * The organization's audit log: filters (action, actor, target, outcome, time range), newest
 * first with cursor paging, the JSON-lines export, and the chain's integrity as the platform's
 * `audit-chain-broken` check last found it (every entry's hash link and signed checkpoints walked),
 * with a button to run the checks again now.
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, query, type RunView, type AuditEntry, type FindingView } from '../api';
import { Alert, AuditEntryCells, auditActor, Table, Button, Card, Field, messageOf, Pager, Select, useCursorPages, When } from '../kit';

const PAGE = 50;
const CHAIN_CHECK = 'audit-chain-broken';

interface Filters {
  action: string;
  actorId: string;
  targetId: string;
  outcome: string;
  since: string;
  until: string;
}

const EMPTY: Filters = { action: '', actorId: '', targetId: '', outcome: '', since: '', until: '' };
const iso = (local: string) => (local ? new Date(local).toISOString() : '');

export function Audit() {
  const [form, setForm] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [error, setError] = useState<string | null>(null);
  const set = (field: keyof Filters) => (value: string) => setForm({ ...form, [field]: value });

  const load = useCallback(
    (before: number | null) => {
      setError(null);
      const { since, until, ...rest } = filters;
      return api<{ entries: AuditEntry[]; nextCursor: number | null }>(
        'GET',
        `/audit${query({ ...rest, since: iso(since), until: iso(until), before, limit: PAGE })}`,
      );
    },
    [filters],
  );
  const { paging, shown } = useCursorPages(load, setError);

  const search = (event: FormEvent) => {
    event.preventDefault();
    setFilters({ ...form, action: form.action.trim(), actorId: form.actorId.trim(), targetId: form.targetId.trim() });
    paging.reset();
  };

  return (
    <>
      <h1>Audit log</h1>
      <ChainIntegrity />
      <form className="filters" onSubmit={search} role="search" aria-label="Filter audit entries">
        <Field label="Action" value={form.action} onChange={set('action')} name="action" hint="e.g. device.status_changed" />
        <Field label="Actor ID" value={form.actorId} onChange={set('actorId')} name="actorId" />
        <Field label="Target ID" value={form.targetId} onChange={set('targetId')} name="targetId" />
        <Select
          label="Outcome"
          value={form.outcome}
          onChange={set('outcome')}
          options={[
            { value: '', label: 'Any outcome' },
            { value: 'success', label: 'success' },
            { value: 'failure', label: 'failure' },
            { value: 'denied', label: 'denied' },
          ]}
        />
        <Field label="From (local time)" type="datetime-local" value={form.since} onChange={set('since')} />
        <Field label="Until (local time)" type="datetime-local" value={form.until} onChange={set('until')} />
        <Button type="submit">Filter</Button>
      </form>
      <p>
        <a href="/api/v1/audit/export" download="audit.jsonl" className="btn btn-secondary">
          Export all entries (JSON lines)
        </a>
      </p>
      {error && <Alert>{error}</Alert>}
      {shown && (
        <>
          <Table
            label="Audit entries"
            caption={`Audit entries, page ${shown.number}`}
            columns={['#', 'Time', 'Action', 'Outcome', 'Actor', 'Target', 'Address']}
          >
            {shown.rows.entries.map((entry) => (
              <tr key={entry.seq} data-testid="audit-entry">
                <AuditEntryCells entry={entry} />
                <td>
                  <span className={`badge badge-${entry.outcome}`}>{entry.outcome}</span>
                </td>
                <td className="wrap">{auditActor(entry.actor)}</td>
                <td className="wrap">{entry.target.type ? `${entry.target.type} ${entry.target.id ?? ''}` : '—'}</td>
                <td>{entry.sourceIp ?? '—'}</td>
              </tr>
            ))}
          </Table>
          {shown.rows.entries.length === 0 && <p>No entry matches.</p>}
          <Pager paging={paging} shown={shown} />
        </>
      )}
    </>
  );
}

function ChainIntegrity() {
  const [state, setState] = useState<{ run: RunView | null; finding: FindingView | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    const [runs, findings] = await Promise.all([
      api<{ runs: RunView[] }>('GET', '/assessment/runs?limit=1'),
      api<{ findings: FindingView[] }>('GET', `/assessment/findings${query({ check: CHAIN_CHECK, state: 'open', limit: 1 })}`),
    ]);
    setState({ run: runs.runs[0] ?? null, finding: findings.findings[0] ?? null });
  }, []);
  useEffect(() => {
    load().catch((caught: unknown) => setError(messageOf(caught)));
  }, [load]);

  const verify = async () => {
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/assessment/runs');
      await load();
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };

  const run = state?.run;
  const failed = run?.failures.find((failure) => failure.check === CHAIN_CHECK);
  return (
    <Card title="Chain integrity">
      {error && <Alert>{error}</Alert>}
      {state && !run && <p data-testid="chain-state">Not verified yet: run the checks.</p>}
      {run && failed && (
        <Alert>
          The chain check could not run at {run.startedAt}: {failed.message}
        </Alert>
      )}
      {run && !failed && !state.finding && (
        <p data-testid="chain-state">
          <span className="badge badge-active">intact</span> Every entry's hash link and signed checkpoint verified at{' '}
          <When at={run.startedAt} />.
        </p>
      )}
      {state?.finding && (
        <Alert>
          <span data-testid="chain-state">Broken: {state.finding.title}</span> (since <When at={state.finding.firstSeenAt} />;{' '}
          {String(state.finding.evidence.problems ?? '?')} problems,{' '}
          {String((state.finding.evidence.kinds as string[] | undefined)?.join(', '))})
        </Alert>
      )}
      <Button variant="secondary" onClick={() => void verify()} disabled={busy}>
        {busy ? 'Verifying…' : 'Verify now'}
      </Button>
    </Card>
  );
}
