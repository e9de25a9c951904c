/**
 * One device: identity (its certificates: fingerprint, expiry, revocation), status, presence,
 * and the lifecycle actions (quarantine, disable, retire) behind a confirmation dialog that
 * re-proves a factor first (POST /auth/step-up with the TOTP code, then POST /devices/:id/<action>;
 * the API itself demands the step-up for disable and retire).
 */
import { useCallback, useEffect, useState } from 'react';
import { api, type Device, type DeviceCertificate, type Presence } from '../api';
import { Alert, Button, Card, ConfirmAction, Link } from '../kit';

export function DeviceDetail(props: { id: string }) {
  const [device, setDevice] = useState<Device | null>(null);
  const [presence, setPresence] = useState<Presence | null>(null);
  const [certificates, setCertificates] = useState<DeviceCertificate[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<Lifecycle | null>(null);

  const load = useCallback(async () => {
    try {
      const path = `/devices/${encodeURIComponent(props.id)}`;
      const [d, p, c] = await Promise.all([
        api<Device>('GET', path),
        api<Presence>('GET', `${path}/presence`),
        api<{ certificates: DeviceCertificate[] }>('GET', `${path}/certificates`),
      ]);
      setDevice(d);
      setPresence(p);
      setCertificates(c.certificates);
    } catch (caught) {
      setError((caught as Error).message);
    }
  }, [props.id]);

  useEffect(() => {
    void load();
  }, [load]);

  if (error && !device) return <Alert>{error}</Alert>;
  if (!device) return <p className="loading">Loading…</p>;
  return (
    <>
      <p>
        <Link to="/devices">← All devices</Link>
      </p>
      <h1>Device {device.serial}</h1>
      {notice && <Alert kind="info">{notice}</Alert>}
      <div className="grid">
        <Card title="Status">
          <dl className="facts">
            <dt>Status</dt>
            <dd>
              <span className={`badge badge-${device.status}`} data-testid="status">
                {device.status}
              </span>
            </dd>
            <dt>Connection</dt>
            <dd>{presence?.online ? `online since ${presence.since} (${presence.protocol ?? '?'})` : 'offline'}</dd>
            <dt>Firmware</dt>
            <dd>{device.firmwareVersion ?? '—'}</dd>
            <dt>Last seen</dt>
            <dd>{device.lastSeenAt ?? 'never'}</dd>
            <dt>Tags</dt>
            <dd>{device.tags.join(', ') || '—'}</dd>
            <dt>Group</dt>
            <dd>{device.group ?? '—'}</dd>
            <dt>Device ID</dt>
            <dd>
              <code>{device.id}</code>
            </dd>
          </dl>
          <div className="actions">
            {actionsFor(device.status).map((action) => (
              <Button key={action} variant="danger" onClick={() => setConfirming(action)}>
                {`${LIFECYCLE[action].label}…`}
              </Button>
            ))}
          </div>
        </Card>
        <Card title="Identity">
          {certificates.length === 0 && <p>No certificate issued.</p>}
          {certificates.map((certificate) => (
            <dl className="facts" key={certificate.serial}>
              <dt>Serial</dt>
              <dd>
                <code>{certificate.serial}</code>
              </dd>
              <dt>SHA-256 fingerprint</dt>
              <dd>
                <code className="secret" data-testid="fingerprint">
                  {certificate.fingerprintSha256}
                </code>
              </dd>
              <dt>Valid</dt>
              <dd>
                {certificate.notBefore} to {certificate.notAfter}
              </dd>
              <dt>Revocation</dt>
              <dd>
                {certificate.status === 'revoked'
                  ? `revoked ${certificate.revokedAt} (${certificate.revocationReason ?? 'no reason'})`
                  : 'not revoked'}
              </dd>
            </dl>
          ))}
        </Card>
      </div>
      <ConfirmAction
        action={confirming}
        actions={LIFECYCLE}
        subject={device.serial}
        onClose={() => setConfirming(null)}
        stepUp
        onConfirm={async (action) => {
          const updated = await api<Device>('POST', `/devices/${encodeURIComponent(device.id)}/${action}`);
          setDevice(updated);
          setConfirming(null);
          setNotice(`Device ${updated.serial} ${LIFECYCLE[action].done}`);
          void load();
        }}
      />
    </>
  );
}

type Lifecycle = 'quarantine' | 'disable' | 'retire';
const LIFECYCLE: Record<Lifecycle, { label: string; done: string; says: string }> = {
  quarantine: {
    label: 'Quarantine',
    done: 'is quarantined; its connection is closed.',
    says: "The broker closes the device's connection at once; it stays quarantined until an operator activates it again.",
  },
  disable: {
    label: 'Disable',
    done: 'is disabled; its connection is closed and its certificate refused.',
    says: 'The device is refused at the broker and for updates until an operator activates it again.',
  },
  retire: {
    label: 'Retire',
    done: 'is retired for good.',
    says: 'The device leaves service for good: its serial never comes back, and this cannot be undone.',
  },
};

/** The actions a device in this status may take (retired is terminal). */
function actionsFor(status: Device['status']): Lifecycle[] {
  if (status === 'retired') return [];
  return (['quarantine', 'disable', 'retire'] as const).filter(
    (action) => !(action === 'quarantine' && status === 'quarantined') && !(action === 'disable' && status === 'disabled'),
  );
}
