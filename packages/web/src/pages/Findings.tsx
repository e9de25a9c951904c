/**
 * Findings of the platform's audit checks: filter by state and severity (cursor pages), run the
 * checks now, accept a finding's risk until a date with the reason on record (confirmation),
 * and the ETSI EN 303 645 compliance report (the API's self-contained HTML page).
 */
import { useCallback, useState } from 'react';
import { api, query, SEVERITIES, type FindingView } from '../api';
import { Alert, Button, Card, ConfirmDialog, Field, messageOf, Pager, Table, Select, useCursorPages, When } from '../kit';

const REPORT = '/api/v1/assessment/compliance/etsi-en-303-645?format=html';

export function Findings() {
  const [state, setState] = useState('open');
  const [severity, setSeverity] = useState('');
  const [suppressing, setSuppressing] = useState<FindingView | null>(null);
  const [reason, setReason] = useState('');
  const [until, setUntil] = useState('');
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(
    (cursor: string | null) =>
      api<{ findings: FindingView[]; nextCursor: string | null }>(
        'GET',
        `/assessment/findings${query({ state, severity, cursor, limit: 50 })}`,
      ),
    [state, severity],
  );
  const { paging, shown, reload } = useCursorPages(load, setError);

  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      const done = await api<{ opened: number; resolved: number; openTotal: number }>('POST', '/assessment/runs');
      setNotice(`Checks run: ${done.opened} opened, ${done.resolved} resolved, ${done.openTotal} open in all.`);
      reload();
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };
  const filter = (set: (value: string) => void) => (value: string) => {
    set(value);
    paging.reset();
  };

  return (
    <>
      <h1>Findings</h1>
      {notice && <Alert kind="info">{notice}</Alert>}
      {error && <Alert>{error}</Alert>}
      <div className="filters">
        <Select
          label="State"
          value={state}
          onChange={filter(setState)}
          options={[
            { value: 'open', label: 'open' },
            { value: 'suppressed', label: 'suppressed' },
            { value: 'resolved', label: 'resolved' },
            { value: '', label: 'any state' },
          ]}
        />
        <Select
          label="Severity"
          value={severity}
          onChange={filter(setSeverity)}
          options={[{ value: '', label: 'any severity' }, ...SEVERITIES.map((s) => ({ value: s, label: s }))]}
        />
        <Button variant="secondary" onClick={() => void run()} disabled={busy}>
          {busy ? 'Running the checks…' : 'Run the checks now'}
        </Button>
        <a href={REPORT} target="_blank" rel="noopener" className="btn btn-secondary">
          ETSI EN 303 645 report
        </a>
      </div>
      {shown && (
        <>
          <Table
            label="Findings"
            caption={`Findings, page ${shown.number}`}
            columns={['Severity', 'Finding', 'Affects', 'First seen', 'Last seen', 'State', '']}
          >
            {shown.rows.findings.map((finding) => (
              <tr key={finding.id} data-testid="finding">
                <td>
                  <span className={`badge badge-${finding.severity}`}>{finding.severity}</span>
                </td>
                <td className="wrap">
                  {finding.title} <code>{finding.check}</code>
                </td>
                <td className="wrap">
                  {finding.resources.map((r) => `${r.type} ${r.id}`).join(', ') || '—'}
                  {finding.moreResources > 0 && ` and ${finding.moreResources} more`}
                </td>
                <td>
                  <When at={finding.firstSeenAt} />
                </td>
                <td>
                  <When at={finding.lastSeenAt} />
                </td>
                <td className="wrap">
                  {finding.state}
                  {finding.suppression && ` until ${finding.suppression.until.slice(0, 10)}: ${finding.suppression.reason}`}
                </td>
                <td>
                  {finding.state === 'open' && (
                    <Button variant="secondary" onClick={() => setSuppressing(finding)}>
                      Accept risk…
                    </Button>
                  )}
                </td>
              </tr>
            ))}
          </Table>
          {shown.rows.findings.length === 0 && <p>No finding in this view.</p>}
          <Pager paging={paging} shown={shown} />
        </>
      )}
      <Card title="About the checks">
        <p>
          The platform runs its checks on a schedule and after relevant events; a finding resolves itself when its cause is gone. Accepting
          a risk hides the finding until the date given, with the reason on record in the audit log.
        </p>
      </Card>
      <ConfirmDialog
        title={`Accept the risk of “${suppressing?.title ?? ''}”?`}
        open={suppressing !== null}
        onClose={() => setSuppressing(null)}
        confirmLabel="Accept risk"
        onConfirm={async () => {
          await api('POST', `/assessment/findings/${encodeURIComponent(suppressing!.id)}/suppress`, {
            reason: reason.trim(),
            until: new Date(until).toISOString(),
          });
          setSuppressing(null);
          setReason('');
          setNotice('The finding is suppressed until the date given.');
          reload();
        }}
      >
        <Field label="Reason (on record)" value={reason} onChange={setReason} required />
        <Field label="Until (local time)" type="datetime-local" value={until} onChange={setUntil} required hint="At most 366 days ahead" />
      </ConfirmDialog>
    </>
  );
}
