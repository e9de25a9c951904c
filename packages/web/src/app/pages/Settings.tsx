/**
 * Settings: what I asked the device for (the desired state) beside what it reports, key by key,
 * and the desired state edited as JSON. Sending first shows what changes (each path now and
 * after) in a dialog; the change goes as a merge patch at the version read, so an edit made
 * meanwhile (by another member) is refused, not overwritten. Owners and members may set it; the
 * platform refuses a guest (binding.role_insufficient) and the card says why.
 */
import { useEffect, useState } from 'react';
import { Alert, Button, Card, Dialog, Field, Table } from '../../kit';
import { patchBetween, reviewDraft, shown, type Change, type JsonObject } from '../../merge-patch';
import { ChangesTable } from '../../state-changes';
import { my } from '../api';
import { useAction } from '../ui';

export function Settings(props: { id: string; reported: Record<string, unknown> }) {
  const { id, reported } = props;
  const [desired, setDesired] = useState<{ state: JsonObject; version: number } | null>(null);
  const [draft, setDraft] = useState('');
  const [review, setReview] = useState<{ next: JsonObject; changes: Change[] } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const { busy, error, run, setError } = useAction();

  useEffect(() => {
    void run(async () => {
      const shadow = await my.state(id);
      setDesired(shadow.desired);
      setDraft(JSON.stringify(shadow.desired.state, null, 2));
    });
  }, [id, run]);

  const startReview = () => {
    setError(null);
    setNotice(null);
    if (!desired) return;
    const reviewed = reviewDraft(draft, desired.state);
    if ('error' in reviewed) setError({ message: reviewed.error, code: 'draft' });
    else if (reviewed.changes.length === 0) setNotice('Nothing changes: this is what the device is already asked for.');
    else setReview(reviewed);
  };
  const apply = () =>
    void run(async () => {
      try {
        const sent = await my.setDesired(id, patchBetween(desired!.state, review!.next), desired!.version);
        setDesired(sent.desired);
        setDraft(JSON.stringify(sent.desired.state, null, 2));
        setNotice('Sent: the device applies it when it is connected.');
      } finally {
        setReview(null);
      }
    });

  const keys = [...new Set([...Object.keys(desired?.state ?? {}), ...Object.keys(reported)])].sort();
  return (
    <Card title="Settings">
      {keys.length > 0 && (
        <Table
          label="Asked for and reported"
          caption="Each setting: what it is asked for and what the device reports"
          columns={['Setting', 'Asked for', 'Reported']}
        >
          {keys.map((key) => (
            <tr key={key}>
              <th scope="row">{key}</th>
              <td>{shown(desired?.state[key])}</td>
              <td>{shown(reported[key])}</td>
            </tr>
          ))}
        </Table>
      )}
      {error && <Alert>{error.message}</Alert>}
      {notice && !error && <Alert kind="info">{notice}</Alert>}
      <Field
        label="Ask it for (JSON)"
        value={draft}
        onChange={setDraft}
        rows={4}
        name="desired"
        hint='For example {"power": "off"}. A key you remove is no longer asked for. You see the change before it is sent.'
      />
      <div className="actions">
        <Button variant="secondary" disabled={busy || !desired} onClick={startReview}>
          Review changes
        </Button>
      </div>
      <Dialog title="Change these settings?" open={review !== null} onClose={() => setReview(null)}>
        <ChangesTable changes={review?.changes ?? []} />
        <div className="actions">
          <Button disabled={busy} onClick={apply}>
            Send
          </Button>
          <Button variant="secondary" onClick={() => setReview(null)}>
            Keep as is
          </Button>
        </div>
      </Dialog>
    </Card>
  );
}
