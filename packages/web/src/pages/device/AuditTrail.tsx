/**
 * The audit entries whose target is this device (GET /audit?targetId=…), newest first: what was
 * done to it, by whom, with what outcome. Reloads when `version` changes (after an action on this
 * page). A role without audit:read sees why the list is missing.
 */
import { useEffect, useState } from 'react';
import { api, query, type AuditEntry } from '../../api';
import { Alert, AuditEntryCells, auditActor, Card, Link, messageOf, Table } from '../../kit';

const SHOWN = 20;
const DETAILS_SHOWN = 80;

/** The entry's details in one short line: a status change as "from → to", anything else as its JSON, cut short. */
function detailsOf(entry: AuditEntry): string {
  const { from, to } = entry.details;
  if (typeof from === 'string' && typeof to === 'string') return `${from} → ${to}`;
  const text = JSON.stringify(entry.details);
  return text === '{}' ? '' : text.length > DETAILS_SHOWN ? `${text.slice(0, DETAILS_SHOWN - 1)}…` : text;
}

export function AuditTrail(props: { deviceId: string; version: number }) {
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api<{ entries: AuditEntry[] }>('GET', `/audit${query({ targetId: props.deviceId, limit: SHOWN })}`)
      .then((page) => {
        setEntries(page.entries);
        setError(null);
      })
      .catch((caught: unknown) => setError(messageOf(caught)));
  }, [props.deviceId, props.version]);

  return (
    <Card title="Audit trail">
      {error && <Alert>{error}</Alert>}
      {entries && (
        <Table
          label="Audit trail of this device"
          caption={`The latest ${SHOWN} audit entries about this device`}
          columns={['#', 'When', 'Action', 'Details', 'Actor', 'Outcome']}
        >
          {entries.map((entry) => (
            <tr key={entry.seq} data-testid="device-audit-entry">
              <AuditEntryCells entry={entry} />
              <td>{detailsOf(entry)}</td>
              <td>{auditActor(entry.actor, 8)}</td>
              <td>{entry.outcome}</td>
            </tr>
          ))}
        </Table>
      )}
      {entries?.length === 0 && <p>Nothing on record about this device yet.</p>}
      <p>
        <Link to="/audit">The organization's audit log</Link> (filter it by this device's ID for older entries)
      </p>
    </Card>
  );
}
