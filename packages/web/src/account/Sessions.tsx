/**
 * My sessions, shared by the console's security page and the companion app's account page: where
 * and when each signed in and was last active; any but this one revoked after a confirmation.
 */
import { useCallback, useEffect, useState } from 'react';
import { api, type SessionView } from '../api';
import { Alert, Button, Card, ConfirmDialog, messageOf, Table, When } from '../kit';

export function Sessions() {
  const [sessions, setSessions] = useState<SessionView[]>([]);
  const [revoking, setRevoking] = useState<SessionView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api<{ sessions: SessionView[] }>('GET', '/me/sessions')
      .then((answer) => setSessions(answer.sessions))
      .catch((caught: unknown) => setError(messageOf(caught)));
  }, []);
  useEffect(load, [load]);

  return (
    <Card title="Sessions">
      {error && <Alert>{error}</Alert>}
      <Table
        label="My active sessions"
        caption="My active sessions"
        columns={['Signed in', 'Last active', 'Kind', 'Address', 'Browser or client', '']}
      >
        {sessions.map((session) => (
          <tr key={session.id} data-testid="session">
            <td>
              <When at={session.createdAt} />
            </td>
            <td>
              <When at={session.lastSeenAt} />
            </td>
            <td>{session.transport === 'cookie' ? 'browser' : 'token'}</td>
            <td>{session.sourceIp}</td>
            <td className="wrap">{session.userAgent || '—'}</td>
            <td>
              {session.current ? (
                <span className="badge">this session</span>
              ) : (
                <Button variant="secondary" onClick={() => setRevoking(session)}>
                  Revoke
                </Button>
              )}
            </td>
          </tr>
        ))}
      </Table>
      <ConfirmDialog
        title="Revoke this session?"
        open={revoking !== null}
        onClose={() => setRevoking(null)}
        confirmLabel="Revoke session"
        onConfirm={async () => {
          await api('DELETE', `/me/sessions/${encodeURIComponent(revoking!.id)}`);
          setRevoking(null);
          load();
        }}
      >
        <p>
          The session from {revoking?.sourceIp} ({revoking?.userAgent || 'unknown client'}) is signed out at once.
        </p>
      </ConfirmDialog>
    </Card>
  );
}
