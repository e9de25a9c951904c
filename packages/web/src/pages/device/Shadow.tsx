/**
 * A device's shadow: desired and reported state side by side (each key once, the keys the device
 * has not caught up with marked), and the desired state edited as JSON. Sending first shows the
 * change as a diff (each path before and after) behind a confirmation; the change goes as a merge
 * patch at the version read, so an edit made meanwhile by someone else is refused, not overwritten.
 */
import { useCallback, useEffect, useState } from 'react';
import { api, type ShadowView } from '../../api';
import { Alert, Button, Card, ConfirmDialog, Field, messageOf, Table, When } from '../../kit';
import { patchBetween, reviewDraft, shown, type Change, type JsonObject } from '../../merge-patch';
import { ChangesTable } from '../../state-changes';

export function Shadow(props: { deviceId: string; serial: string; onChanged: () => void }) {
  const path = `/devices/${encodeURIComponent(props.deviceId)}/state`;
  const [shadow, setShadow] = useState<ShadowView | null>(null);
  const [draft, setDraft] = useState('');
  const [review, setReview] = useState<{ next: JsonObject; changes: Change[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const current = await api<ShadowView>('GET', path);
      setShadow(current);
      setDraft(JSON.stringify(current.desired.state, null, 2));
    } catch (caught) {
      setError(messageOf(caught));
    }
  }, [path]);
  useEffect(() => {
    void load();
  }, [load]);

  const startReview = () => {
    setError(null);
    setNotice(null);
    const reviewed = reviewDraft(draft, shadow!.desired.state);
    if ('error' in reviewed) {
      setError(reviewed.error);
      return;
    }
    if (reviewed.changes.length === 0) {
      setNotice('Nothing changed: the desired state is as the platform holds it.');
      return;
    }
    setReview(reviewed);
  };

  if (!shadow) return <Card title="State">{error ? <Alert>{error}</Alert> : <p className="loading">Loading…</p>}</Card>;
  const keys = [...new Set([...Object.keys(shadow.desired.state), ...Object.keys(shadow.reported.state)])].sort();
  return (
    <Card title="State">
      <p>
        Desired version {shadow.desired.version}, changed <When at={shadow.desired.updatedAt} never="never" />; reported version{' '}
        {shadow.reported.version}, changed <When at={shadow.reported.updatedAt} never="never" />.
      </p>
      <Table
        label="Desired and reported state"
        caption="Desired and reported state, key by key"
        columns={['Key', 'Desired', 'Reported', '']}
      >
        {keys.map((key) => (
          <tr key={key} data-testid="state-row">
            <th scope="row">
              <code>{key}</code>
            </th>
            <td>
              <code>{shown(shadow.desired.state[key])}</code>
            </td>
            <td>
              <code>{shown(shadow.reported.state[key])}</code>
            </td>
            <td>{key in shadow.delta ? <span className="badge badge-pending">not applied yet</span> : null}</td>
          </tr>
        ))}
      </Table>
      {keys.length === 0 && <p>No state yet.</p>}
      {notice && <Alert kind="info">{notice}</Alert>}
      {error && <Alert>{error}</Alert>}
      <Field
        label="Desired state (JSON)"
        value={draft}
        onChange={setDraft}
        rows={8}
        hint="Edit the whole object; a key you remove is deleted. You see the change before it is sent."
      />
      <div className="actions">
        <Button variant="secondary" onClick={() => void load()}>
          Reload
        </Button>
        <Button onClick={startReview}>Review changes…</Button>
      </div>
      <ConfirmDialog
        title={`Send the desired state to ${props.serial}?`}
        open={review !== null}
        onClose={() => setReview(null)}
        confirmLabel="Send desired state"
        variant="primary"
        onConfirm={async () => {
          const sent = await api<ShadowView>('PATCH', `${path}/desired`, {
            state: patchBetween(shadow.desired.state, review!.next),
            version: shadow.desired.version,
          });
          setShadow(sent);
          setDraft(JSON.stringify(sent.desired.state, null, 2));
          setReview(null);
          setNotice(`Desired state version ${sent.desired.version} sent; the device applies it when it is connected.`);
          props.onChanged();
        }}
      >
        <ChangesTable changes={review?.changes ?? []} />
      </ConfirmDialog>
    </Card>
  );
}
