/**
 * My passkeys, shared by the console's security page and the companion app's account page: add
 * one under a name I choose (behind a step-up: the platform asks for a recent one), the list with
 * when each was made and last used, a new name for one (PATCH, no step-up: a name grants nothing),
 * and removal behind a confirmation and a step-up. The console
 * also shows its organization's passkey policy (the roles that must sign in with a passkey).
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { Alert, Button, Card, ConfirmDialog, Dialog, Field, messageOf, Table, When } from '../kit';
import { listPasskeys, passkeysSupported, registerPasskey, removePasskey, renamePasskey } from './passkey';
import type { PasskeyPolicy, PasskeyView } from '../api';

/** The organization's rule, when the reader may see it: the roles that must use a passkey, and mine (null for a consumer). */
export type PolicyForReader = PasskeyPolicy & { myRole: string | null };

function PolicyNote(props: { policy: PolicyForReader }) {
  const { passkeyRequiredRoles: requiredRoles, myRole } = props.policy;
  if (requiredRoles.length === 0) return <p data-testid="passkey-policy">Your organization does not require passkeys.</p>;
  return (
    <p data-testid="passkey-policy">
      Your organization requires a passkey to sign in for these roles: {requiredRoles.join(', ')}.{' '}
      {myRole !== null && requiredRoles.includes(myRole)
        ? `That includes you (${myRole}): keep at least one passkey.`
        : `Your role (${myRole}) may use a passkey or an authenticator app.`}
    </p>
  );
}

export function Passkeys(props: { policy?: PolicyForReader | null }) {
  const [passkeys, setPasskeys] = useState<PasskeyView[]>([]);
  const [name, setName] = useState('');
  const [adding, setAdding] = useState(false);
  const [added, setAdded] = useState<string | null>(null);
  const [removing, setRemoving] = useState<PasskeyView | null>(null);
  const [renaming, setRenaming] = useState<PasskeyView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const supported = passkeysSupported();
  const load = useCallback(() => {
    listPasskeys()
      .then(setPasskeys)
      .catch((caught: unknown) => setError(messageOf(caught)));
  }, []);
  useEffect(load, [load]);

  const ask = (event: FormEvent) => {
    event.preventDefault();
    setAdded(null);
    setAdding(true);
  };

  return (
    <Card title="Passkeys">
      <p>A passkey signs you in with this device's screen lock or a security key: no password to type, nothing to phish.</p>
      {props.policy && <PolicyNote policy={props.policy} />}
      {error && <Alert>{error}</Alert>}
      {added && <Alert kind="info">Passkey “{added}” added: you can sign in with it now.</Alert>}
      {supported ? (
        <form onSubmit={ask} aria-label="Add a passkey" className="stack">
          <Field
            label="Name for the new passkey"
            value={name}
            onChange={setName}
            required
            name="passkey-name"
            hint="So you can tell your passkeys apart, e.g. “Work laptop”"
          />
          <Button type="submit" disabled={!name.trim()}>
            Add a passkey…
          </Button>
        </form>
      ) : (
        <Alert kind="info">This browser cannot create or use passkeys.</Alert>
      )}
      <Table label="My passkeys" caption="My passkeys" columns={['Name', 'Added', 'Last used', 'Synced', '']}>
        {passkeys.map((passkey) => (
          <tr key={passkey.id} data-testid="passkey">
            <td>{passkey.name}</td>
            <td>
              <When at={passkey.createdAt} />
            </td>
            <td>
              <When at={passkey.lastUsedAt} never="never" />
            </td>
            <td>{passkey.backedUp ? 'yes' : 'no (this device only)'}</td>
            <td className="row-actions">
              <Button variant="secondary" onClick={() => setRenaming(passkey)}>
                Rename <span className="visually-hidden">{passkey.name}</span>
              </Button>
              <Button variant="secondary" onClick={() => setRemoving(passkey)}>
                Remove <span className="visually-hidden">{passkey.name}</span>
              </Button>
            </td>
          </tr>
        ))}
      </Table>
      {passkeys.length === 0 && <p>No passkey yet.</p>}
      <ConfirmDialog
        title={`Add the passkey “${name.trim()}”?`}
        open={adding}
        onClose={() => setAdding(false)}
        confirmLabel="Create passkey"
        variant="primary"
        stepUp
        onConfirm={async () => {
          const { passkey } = await registerPasskey(name.trim());
          setAdded(passkey.name);
          setAdding(false);
          setName('');
          load();
        }}
      >
        <p>Your browser then asks you to create the passkey with your screen lock or security key.</p>
      </ConfirmDialog>
      <RenameDialog
        passkey={renaming}
        onClose={() => setRenaming(null)}
        onRenamed={() => {
          setRenaming(null);
          load();
        }}
      />
      <ConfirmDialog
        title={`Remove the passkey “${removing?.name ?? ''}”?`}
        open={removing !== null}
        onClose={() => setRemoving(null)}
        confirmLabel="Remove passkey"
        stepUp
        onConfirm={async () => {
          await removePasskey(removing!.id);
          setRemoving(null);
          load();
        }}
      >
        <p>It no longer signs you in. Delete it from the device or password manager that holds it too.</p>
      </ConfirmDialog>
    </Card>
  );
}

/** A new name for one passkey, in a modal form (Enter saves, Escape cancels). */
function RenameDialog(props: { passkey: PasskeyView | null; onClose: () => void; onRenamed: () => void }) {
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setName(props.passkey?.name ?? '');
    setError(null);
  }, [props.passkey]);
  const save = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await renamePasskey(props.passkey!.id, name.trim());
      props.onRenamed();
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Rename the passkey “${props.passkey?.name ?? ''}”`} open={props.passkey !== null} onClose={props.onClose}>
      <form onSubmit={save}>
        {error && <Alert>{error}</Alert>}
        <Field label="New name" value={name} onChange={setName} required name="passkey-new-name" />
        <div className="actions">
          <Button variant="secondary" onClick={props.onClose}>
            Cancel
          </Button>
          <Button type="submit" disabled={busy || !name.trim() || name.trim() === props.passkey?.name}>
            Save name
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
