/**
 * One device: identity (its certificates: fingerprint, expiry, revocation), status, presence,
 * and the lifecycle actions (quarantine, disable, retire) behind a confirmation dialog that
 * re-proves a factor first (POST /auth/step-up with the TOTP code, then POST /devices/:id/<action>;
 * the API itself demands the step-up for disable, retire and rotation); credential rotation the same way
 * (every certificate revoked, a one-time enrollment token shown once). Below: the shadow, the
 * telemetry charts, the command console and the device's audit trail (./device/).
 */
import { useCallback, useEffect, useState } from 'react';
import { api, type DeviceCertificateView, type DeviceView, type PresenceView, type ProductView, type RotatedCredentialsView } from '../api';
import { Alert, Button, Card, ConfirmAction, ConfirmDialog, Link, When } from '../kit';
import { AuditTrail } from './device/AuditTrail';
import { Commands } from './device/Commands';
import { Shadow } from './device/Shadow';
import { Telemetry } from './device/Telemetry';

export function DeviceDetail(props: { id: string }) {
  const [device, setDevice] = useState<DeviceView | null>(null);
  const [presence, setPresence] = useState<PresenceView | null>(null);
  const [certificates, setCertificates] = useState<DeviceCertificateView[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<Lifecycle | null>(null);
  // undefined while loading: the command console waits for the product's declared commands.
  const [product, setProduct] = useState<ProductView | null | undefined>(undefined);
  const [rotating, setRotating] = useState(false);
  const [rotated, setRotated] = useState<RotatedCredentialsView | null>(null);
  // Bumped after each action here, so the audit trail shows it.
  const [version, setVersion] = useState(0);
  const changed = useCallback(() => setVersion((v) => v + 1), []);

  const load = useCallback(async () => {
    try {
      const path = `/devices/${encodeURIComponent(props.id)}`;
      const [d, p, c] = await Promise.all([
        api<DeviceView>('GET', path),
        api<PresenceView>('GET', `${path}/presence`),
        api<{ certificates: DeviceCertificateView[] }>('GET', `${path}/certificates`),
      ]);
      setDevice(d);
      setPresence(p);
      setCertificates(c.certificates);
      const { products } = await api<{ products: ProductView[] }>('GET', '/products');
      setProduct(products.find((candidate) => candidate.id === d.productId) ?? null);
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
          {rotated && (
            <Alert kind="info">
              <p>
                Credentials rotated: {rotated.revoked.length} certificate(s) revoked. The device enrolls again with this one-time token
                (shown once, valid until <When at={rotated.expiresAt} />
                ):
              </p>
              <code className="secret" data-testid="enrollment-token">
                {rotated.token}
              </code>
            </Alert>
          )}
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
          {device.status !== 'retired' && (
            <div className="actions">
              <Button variant="danger" onClick={() => setRotating(true)}>
                Rotate credentials…
              </Button>
            </div>
          )}
        </Card>
      </div>
      <div className="grid">
        <Shadow deviceId={device.id} serial={device.serial} onChanged={changed} />
        {product !== undefined && <Commands deviceId={device.id} declared={product?.commands ?? null} onSent={changed} />}
      </div>
      <Telemetry deviceId={device.id} />
      <AuditTrail deviceId={device.id} version={version} />
      <ConfirmDialog
        title={`Rotate the credentials of ${device.serial}?`}
        open={rotating}
        onClose={() => setRotating(false)}
        confirmLabel="Rotate credentials"
        stepUp
        onConfirm={async () => {
          const answer = await api<RotatedCredentialsView>('POST', `/devices/${encodeURIComponent(device.id)}/credentials/rotate`, {
            reason: 'superseded',
          });
          setRotating(false);
          setRotated(answer);
          changed();
          void load();
        }}
      >
        <p>
          Every certificate of the device is revoked at once (it is refused from its next message) and a one-time enrollment token is made
          for it to enroll with a new key.
        </p>
      </ConfirmDialog>
      <ConfirmAction
        action={confirming}
        actions={LIFECYCLE}
        subject={device.serial}
        onClose={() => setConfirming(null)}
        stepUp
        onConfirm={async (action) => {
          const updated = await api<DeviceView>('POST', `/devices/${encodeURIComponent(device.id)}/${action}`);
          setDevice(updated);
          setConfirming(null);
          setNotice(`Device ${updated.serial} ${LIFECYCLE[action].done}`);
          changed();
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
function actionsFor(status: DeviceView['status']): Lifecycle[] {
  if (status === 'retired') return [];
  return (['quarantine', 'disable', 'retire'] as const).filter(
    (action) => !(action === 'quarantine' && status === 'quarantined') && !(action === 'disable' && status === 'disabled'),
  );
}
