/**
 * One device: identity (its certificates: fingerprint, expiry, revocation), status, presence,
 * and the quarantine action behind a confirmation dialog that re-proves a factor first
 * (POST /auth/step-up with the TOTP code, then POST /devices/:id/quarantine).
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, type Device, type DeviceCertificate, type Presence } from '../api';
import { Alert, Button, Card, Dialog, Field, Link } from '../kit';

export function DeviceDetail(props: { id: string }) {
  const [device, setDevice] = useState<Device | null>(null);
  const [presence, setPresence] = useState<Presence | null>(null);
  const [certificates, setCertificates] = useState<DeviceCertificate[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);

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
          {device.status !== 'quarantined' && device.status !== 'retired' && (
            <Button variant="danger" onClick={() => setConfirming(true)}>
              Quarantine…
            </Button>
          )}
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
      <QuarantineDialog
        device={device}
        open={confirming}
        onClose={() => setConfirming(false)}
        onDone={(updated) => {
          setDevice(updated);
          setConfirming(false);
          setNotice(`Device ${updated.serial} is quarantined; its connection is closed.`);
          void load();
        }}
      />
    </>
  );
}

function QuarantineDialog(props: { device: Device; open: boolean; onClose: () => void; onDone: (device: Device) => void }) {
  const [code, setCode] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/auth/step-up', code ? { code } : { password });
      props.onDone(await api<Device>('POST', `/devices/${encodeURIComponent(props.device.id)}/quarantine`));
      setCode('');
      setPassword('');
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : 'The platform could not be reached; try again');
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog title={`Quarantine ${props.device.serial}?`} open={props.open} onClose={props.onClose}>
      <form onSubmit={submit}>
        <p>The broker closes the device's connection at once; it stays quarantined until an operator activates it again.</p>
        <p>Confirm it is you: your authentication code (or your password if you have no authenticator).</p>
        {error && <Alert>{error}</Alert>}
        <Field label="Authentication code" value={code} onChange={setCode} inputMode="numeric" autoComplete="one-time-code" />
        <Field label="Password" type="password" value={password} onChange={setPassword} autoComplete="current-password" />
        <div className="actions">
          <Button variant="secondary" onClick={props.onClose}>
            Cancel
          </Button>
          <Button type="submit" variant="danger" disabled={busy || (!code && !password)}>
            Quarantine
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
