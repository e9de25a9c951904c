/**
 * My devices: the devices bound to me (owner) and those shared with me (member, guest), each with
 * whether it is online now, and the invitations waiting for me to accept or decline.
 */
import { useCallback, useEffect, useState } from 'react';
import { Alert, Button, Card, Link } from '../../kit';
import { my, nameOf, ROLE_LABEL, type InvitationView, type MyDeviceView, type MyPresenceView } from '../api';
import { Badge, useAction } from '../ui';

interface Row {
  device: MyDeviceView;
  presence: MyPresenceView | null;
}

export function MyDevices() {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [invitations, setInvitations] = useState<InvitationView[]>([]);
  const { error, run, busy } = useAction();

  const refresh = useCallback(async () => {
    const [devices, waiting] = await Promise.all([my.devices(), my.invitations()]);
    const presences = await Promise.all(devices.map((d) => my.presence(d.id).catch(() => null)));
    setRows(devices.map((device, i) => ({ device, presence: presences[i] ?? null })));
    setInvitations(waiting);
  }, []);
  useEffect(() => {
    void run(refresh);
  }, [run, refresh]);
  const answer = (invitation: InvitationView, accept: boolean) =>
    void run(async () => {
      await (accept ? my.accept(invitation.id) : my.decline(invitation.id));
      await refresh();
    });

  const owned = rows?.filter((r) => r.device.role === 'owner') ?? [];
  const shared = rows?.filter((r) => r.device.role !== 'owner') ?? [];
  return (
    <>
      <h1>My devices</h1>
      {error && <Alert>{error.message}</Alert>}
      {invitations.length > 0 && (
        <Card title="Invitations for you">
          <ul className="device-list">
            {invitations.map((invitation) => (
              <li key={invitation.id} className="device-item">
                <p>
                  {invitation.kind === 'transfer'
                    ? 'A device offered to you to own'
                    : `A device shared with you: you can ${invitation.role === 'member' ? 'view and use' : 'view'} it`}
                  . The invitation stands until {new Date(invitation.expiresAt).toLocaleDateString()}.
                </p>
                <div className="actions">
                  <Button disabled={busy} onClick={() => answer(invitation, true)}>
                    Accept
                  </Button>
                  <Button variant="secondary" disabled={busy} onClick={() => answer(invitation, false)}>
                    Decline
                  </Button>
                </div>
              </li>
            ))}
          </ul>
        </Card>
      )}
      {rows === null ? (
        <p className="loading">Loading…</p>
      ) : (
        <>
          <DeviceList title="Mine" rows={owned} empty="No device yet." />
          <DeviceList title="Shared with me" rows={shared} empty="Nobody has shared a device with you." />
        </>
      )}
      <p>
        <Link to="/add" className="btn btn-primary">
          Add a device
        </Link>
      </p>
    </>
  );
}

function DeviceList(props: { title: string; rows: Row[]; empty: string }) {
  return (
    <Card title={props.title}>
      {props.rows.length === 0 ? (
        <p>{props.empty}</p>
      ) : (
        <ul className="device-list">
          {props.rows.map(({ device, presence }) => (
            <li key={device.id} className="device-item">
              <Link to={`/devices/${encodeURIComponent(device.id)}`} className="device-link">
                {nameOf(device)}
              </Link>
              <span className="device-meta">
                <Badge kind={presence?.online ? 'online' : 'offline'}>{presence?.online ? 'Online' : 'Offline'}</Badge>{' '}
                <Badge kind={device.role}>{ROLE_LABEL[device.role]}</Badge>
              </span>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}
