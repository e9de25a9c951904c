/**
 * One device: its state and last readings (followed live over the server-sent event stream), its
 * history (a chart), the settings asked of it (desired state), transfer to a new owner,
 * the commands the app offers, my own name for it, what it collects and why (and the owner's
 * consents), sharing by email with a role (list, revoke, cancel), leaving a shared device and unbinding one I own (confirmed in a dialog). The controls
 * are the same for every role: the platform decides (a guest's or member's attempt to share or
 * unbind is refused with binding.role_insufficient) and the page says why it was refused.
 */
import { useCallback, useEffect, useState } from 'react';
import { Alert, Button, Card, Dialog, Field, Select } from '../../kit';
import { applyPatch } from '../../merge-patch';
import { navigate } from '../../router';
import {
  COMMANDS,
  my,
  nameOf,
  ROLE_LABEL,
  type InvitationView,
  type MemberView,
  type MyDeviceView,
  type MyPresenceView,
  type TelemetryValue,
} from '../api';
import { Badge, useAction } from '../ui';
import { History } from './History';
import { Privacy } from './Privacy';
import { Settings } from './Settings';
import { Transfer } from './Transfer';

type Readings = Record<string, { value: TelemetryValue; ts: string }>;

function show(value: unknown): string {
  if (value === null || value === undefined) return '—';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/**
 * Follows the device's live stream: the reported state and readings as they arrive; `ended` says
 * why it stopped. A stream that reached its time limit (`expired`) is opened again at once.
 */
function useLive(id: string, onReported: (state: Record<string, unknown>) => void, onReadings: (readings: Readings) => void) {
  const [ended, setEnded] = useState<string | null>(null);
  const [round, setRound] = useState(0);
  useEffect(() => {
    const source = new EventSource(my.liveUrl(id));
    source.addEventListener('reported', (event) => onReported((JSON.parse(event.data) as { state: Record<string, unknown> }).state));
    source.addEventListener('telemetry', (event) => {
      const { readings } = JSON.parse(event.data) as { readings: { ts: string; values: Record<string, TelemetryValue> }[] };
      const latest: Readings = {};
      for (const reading of readings) for (const [name, value] of Object.entries(reading.values)) latest[name] = { value, ts: reading.ts };
      onReadings(latest);
    });
    source.addEventListener('end', (event) => {
      source.close();
      const { reason } = JSON.parse(event.data) as { reason: string };
      if (reason === 'expired') setRound((n) => n + 1);
      else setEnded(reason);
    });
    return () => source.close();
  }, [id, round, onReported, onReadings]);
  return ended;
}

export function DeviceView(props: { id: string }) {
  const { id } = props;
  const [device, setDevice] = useState<MyDeviceView | null>(null);
  const [presence, setPresence] = useState<MyPresenceView | null>(null);
  const [reported, setReported] = useState<Record<string, unknown>>({});
  const [readings, setReadings] = useState<Readings>({});
  const load = useAction();

  useEffect(() => {
    void load.run(async () => {
      const [d, p, state, latest] = await Promise.all([my.device(id), my.presence(id), my.state(id), my.latest(id)]);
      setDevice(d);
      setPresence(p);
      setReported(state.reported.state);
      setReadings(latest.values);
    });
    // load.run is stable; the device is loaded again only when the ID changes.
  }, [id, load.run]);
  // The stream's first `reported` is the whole state; each later one is what the device sent: a merge patch.
  const onReported = useCallback((state: Record<string, unknown>) => setReported((before) => applyPatch(before, state)), []);
  const onReadings = useCallback((latest: Readings) => setReadings((before) => ({ ...before, ...latest })), []);
  const ended = useLive(id, onReported, onReadings);

  if (!device) return load.error ? <Alert>{load.error.message}</Alert> : <p className="loading">Loading…</p>;
  return (
    <>
      <h1>{nameOf(device)}</h1>
      <p className="device-meta">
        <Badge kind={presence?.online ? 'online' : 'offline'}>{presence?.online ? 'Online' : 'Offline'}</Badge>{' '}
        <Badge kind={device.role}>{ROLE_LABEL[device.role]}</Badge> <span>Serial {device.serial}</span>
      </p>
      {ended === 'revoked' && <Alert>Your access to this device has ended.</Alert>}
      {ended === 'signed_out' && <Alert>You were signed out. Sign in again to follow this device.</Alert>}
      <Card title="Now">
        {Object.keys(readings).length === 0 && Object.keys(reported).length === 0 ? (
          <p>No reading yet.</p>
        ) : (
          <dl className="facts">
            {Object.entries(readings).map(([name, reading]) => (
              <div key={`r-${name}`}>
                <dt>{name}</dt>
                <dd>
                  {show(reading.value)} <span className="hint">at {new Date(reading.ts).toLocaleTimeString()}</span>
                </dd>
              </div>
            ))}
            {Object.entries(reported).map(([name, value]) => (
              <div key={`s-${name}`}>
                <dt>{name}</dt>
                <dd>{show(value)}</dd>
              </div>
            ))}
          </dl>
        )}
      </Card>
      <History id={id} />
      <Controls id={id} />
      <Settings id={id} reported={reported} />
      <Rename device={device} onRenamed={setDevice} />
      <Privacy id={id} />
      <Sharing device={device} />
      <Transfer id={id} />
      <Removal device={device} />
    </>
  );
}

function Controls(props: { id: string }) {
  const [outcome, setOutcome] = useState<string | null>(null);
  const { busy, error, run } = useAction();
  const send = (name: string, label: string) =>
    void run(async () => {
      setOutcome(`${label}: sent…`);
      const sent = await my.command(props.id, name);
      const done = sent.status === 'pending' ? await my.commandOutcome(props.id, sent.id) : sent;
      setOutcome(`${label}: ${done.status.replace('_', ' ')}${done.error ? ` (${done.error})` : ''}`);
    });
  return (
    <Card title="Control">
      {error && <Alert>{error.message}</Alert>}
      {outcome && !error && <Alert kind="info">{outcome}</Alert>}
      <div className="actions">
        {COMMANDS.map((command) => (
          <Button key={command.name} variant="secondary" disabled={busy} onClick={() => send(command.name, command.label)}>
            {command.label}
          </Button>
        ))}
      </div>
    </Card>
  );
}

function Rename(props: { device: MyDeviceView; onRenamed: (device: MyDeviceView) => void }) {
  const [label, setLabel] = useState(props.device.label ?? '');
  const { busy, error, submit } = useAction();
  return (
    <Card title="My name for it">
      <form onSubmit={submit(async () => props.onRenamed(await my.rename(props.device.id, label.trim() || null)))}>
        {error && <Alert>{error.message}</Alert>}
        <Field label="Name" value={label} onChange={setLabel} hint="Only you see this name" />
        <Button type="submit" variant="secondary" disabled={busy}>
          Save name
        </Button>
      </form>
    </Card>
  );
}

function Sharing(props: { device: MyDeviceView }) {
  const { id, role } = props.device;
  const [members, setMembers] = useState<MemberView[]>([]);
  const [invitations, setInvitations] = useState<InvitationView[]>([]);
  const [email, setEmail] = useState('');
  const [shareRole, setShareRole] = useState<'member' | 'guest'>('guest');
  const [notice, setNotice] = useState<string | null>(null);
  const { busy, error, run, submit } = useAction();
  const refresh = useCallback(async () => {
    if (role !== 'owner') return;
    const shares = await my.shares(id);
    setMembers(shares.members.filter((m) => m.role !== 'owner'));
    setInvitations(shares.invitations);
  }, [id, role]);
  useEffect(() => {
    void run(refresh);
  }, [run, refresh]);

  return (
    <Card title="Sharing">
      {role !== 'owner' && <p className="hint">Only the owner can share this device.</p>}
      {error && <Alert>{error.message}</Alert>}
      {notice && !error && <Alert kind="info">{notice}</Alert>}
      {(members.length > 0 || invitations.length > 0) && (
        <ul className="device-list" aria-label="People with access">
          {members.map((member) => (
            <li key={member.userId} className="device-item">
              <span>
                {member.email} <Badge kind={member.role}>{member.role === 'member' ? 'Can use' : 'Can view'}</Badge>
              </span>
              <Button
                variant="danger"
                disabled={busy}
                onClick={() =>
                  void run(async () => {
                    await my.revokeShare(id, member.userId);
                    setNotice(`${member.email} no longer has access.`);
                    await refresh();
                  })
                }
              >
                Revoke {member.email}
              </Button>
            </li>
          ))}
          {invitations.map((invitation) => (
            <li key={invitation.id} className="device-item">
              <span>
                {invitation.email} <Badge kind="pending">{invitation.kind === 'transfer' ? 'Offered to own' : 'Invited'}</Badge>
              </span>
              <Button
                variant="secondary"
                disabled={busy}
                onClick={() =>
                  void run(async () => {
                    await my.cancelInvitation(id, invitation.id);
                    await refresh();
                  })
                }
              >
                Cancel invitation to {invitation.email}
              </Button>
            </li>
          ))}
        </ul>
      )}
      <form
        onSubmit={submit(async () => {
          await my.share(id, email.trim(), shareRole);
          setNotice(`Invitation sent to ${email.trim()}: it shows in their app until they accept it.`);
          setEmail('');
          await refresh();
        })}
      >
        <Field label="Share with (email)" type="email" value={email} onChange={setEmail} autoComplete="off" required />
        <Select
          label="They can"
          value={shareRole}
          onChange={(value) => setShareRole(value === 'member' ? 'member' : 'guest')}
          options={[
            { value: 'guest', label: 'View it' },
            { value: 'member', label: 'View and use it' },
          ]}
        />
        <Button type="submit" disabled={busy}>
          Share
        </Button>
      </form>
    </Card>
  );
}

function Removal(props: { device: MyDeviceView }) {
  const { id, role } = props.device;
  const [confirming, setConfirming] = useState<'unbind' | 'leave' | null>(null);
  const { busy, error, run } = useAction();
  const act = (what: 'unbind' | 'leave') =>
    void run(async () => {
      try {
        await (what === 'unbind' ? my.unbind(id) : my.leave(id));
      } finally {
        setConfirming(null);
      }
      navigate('/');
    });
  return (
    <Card title="Remove">
      {error && <Alert>{error.message}</Alert>}
      <div className="actions">
        <Button variant="danger" onClick={() => setConfirming('unbind')}>
          Remove from my account
        </Button>
        {role !== 'owner' && (
          <Button variant="secondary" onClick={() => setConfirming('leave')}>
            Stop sharing with me
          </Button>
        )}
      </div>
      <Dialog
        title={confirming === 'leave' ? 'Stop sharing this device with you?' : 'Remove this device?'}
        open={confirming !== null}
        onClose={() => setConfirming(null)}
      >
        <p>
          {confirming === 'leave'
            ? 'You will no longer see or use it. The owner can share it with you again.'
            : 'Everyone it is shared with loses access, and the device erases your settings. Anyone with a new code can then add it.'}
        </p>
        <div className="actions">
          <Button variant="danger" disabled={busy} onClick={() => act(confirming ?? 'unbind')}>
            {confirming === 'leave' ? 'Stop sharing' : 'Remove'}
          </Button>
          <Button variant="secondary" onClick={() => setConfirming(null)}>
            Keep it
          </Button>
        </div>
      </Dialog>
    </Card>
  );
}
