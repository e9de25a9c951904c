/**
 * What a device collects and why (ETSI EN 303 645 provision 6): what its product senses, each
 * purpose with the readings it needs, required ones marked as such and optional ones as switches
 * the owner turns on or off (off until granted), and the readings stored now. The platform stores
 * only what a required or granted purpose names; a switch the API refuses (not the owner) says why.
 * A switch shows the owner's choice at once while it is sent, and falls back to what the platform
 * holds when the answer comes (the same choice, or the old one if it was refused).
 */
import { useEffect, useId, useState } from 'react';
import { Alert, Card } from '../../kit';
import { my, type DevicePrivacyView, type PrivacyView } from '../api';
import { useAction } from '../ui';

export function Privacy(props: { id: string }) {
  const [privacy, setPrivacy] = useState<DevicePrivacyView | null>(null);
  const [asked, setAsked] = useState<Record<string, boolean>>({});
  const { busy, error, run } = useAction();
  useEffect(() => {
    void run(async () => setPrivacy(await my.privacy(props.id)));
  }, [run, props.id]);

  return (
    <Card title="Privacy">
      {error && <Alert>{error.message}</Alert>}
      {privacy && !privacy.declared && <p>This product does not say what it collects: everything it sends is kept.</p>}
      {privacy?.declared && (
        <>
          <p>It senses: {privacy.senses.join(', ') || 'nothing'}.</p>
          <ul className="device-list">
            {privacy.purposes.map((purpose) => (
              <li key={purpose.id} className="device-item">
                {purpose.required ? (
                  <span>
                    <strong>{purpose.description}</strong> <span className="hint">(needed for it to work)</span>
                  </span>
                ) : (
                  <Consent
                    label={purpose.description}
                    checked={asked[purpose.id] ?? purpose.granted}
                    disabled={busy}
                    onChange={(granted) => {
                      setAsked({ [purpose.id]: granted });
                      void run(async () => setPrivacy(await my.setConsents(props.id, { [purpose.id]: granted }))).finally(() =>
                        setAsked({}),
                      );
                    }}
                  />
                )}
                <span className="hint">Uses: {purpose.telemetry.join(', ') || 'no readings'}</span>
              </li>
            ))}
          </ul>
          <p data-testid="collected">Kept now: {privacy.collected?.join(', ') || 'nothing'}</p>
        </>
      )}
    </Card>
  );
}

function Consent(props: { label: string; checked: boolean; disabled: boolean; onChange: (granted: boolean) => void }) {
  const id = useId();
  return (
    <span className="consent">
      <input id={id} type="checkbox" checked={props.checked} disabled={props.disabled} onChange={(e) => props.onChange(e.target.checked)} />
      <label htmlFor={id}>{props.label}</label>
    </span>
  );
}

/**
 * What a product collects, read before adding a device of it: what it senses, each purpose with
 * its readings, needed ones marked, optional ones off until the owner turns them on after adding it.
 */
export function ProductCollects(props: { privacy: PrivacyView }) {
  const { privacy } = props;
  if (!privacy.declared) return <p>This product does not say what it collects: everything it sends is kept.</p>;
  return (
    <>
      <p>It senses: {privacy.senses.join(', ') || 'nothing'}.</p>
      <ul className="device-list" aria-label="Why it collects">
        {privacy.purposes.map((purpose) => (
          <li key={purpose.id} className="device-item">
            <span>
              <strong>{purpose.description}</strong>{' '}
              <span className="hint">{purpose.required ? '(needed for it to work)' : '(optional: off until you turn it on)'}</span>
            </span>
            <span className="hint">Uses: {purpose.telemetry.join(', ') || 'no readings'}</span>
          </li>
        ))}
      </ul>
    </>
  );
}
