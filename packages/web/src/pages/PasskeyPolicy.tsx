/**
 * The organization's passkey policy, set from the security page by the roles that hold org:manage
 * (owners and admins, as the API checks): the roles chosen must sign in with a passkey. Saving
 * asks for confirmation and a step-up (PUT /org/passkey-policy demands a recent one); the page's
 * note of the policy follows the answer.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { api, OPERATOR_ROLES, type OrganizationView, type PasskeyPolicy } from '../api';
import { Alert, Button, Card, ConfirmDialog } from '../kit';

const roleName = (role: string) => role.replace('_', ' ');

export function PasskeyPolicyCard(props: { requiredRoles: string[]; onChanged: (requiredRoles: string[]) => void }) {
  const [chosen, setChosen] = useState<string[]>(props.requiredRoles);
  const [confirming, setConfirming] = useState(false);
  const [saved, setSaved] = useState(false);
  useEffect(() => setChosen(props.requiredRoles), [props.requiredRoles]);

  const unchanged = chosen.length === props.requiredRoles.length && chosen.every((role) => props.requiredRoles.includes(role));
  const toggle = (role: string) => {
    setSaved(false);
    setChosen(chosen.includes(role) ? chosen.filter((r) => r !== role) : [...chosen, role]);
  };
  const ask = (event: FormEvent) => {
    event.preventDefault();
    setConfirming(true);
  };
  // In the roles' own order, whatever order they were ticked in.
  const ordered = OPERATOR_ROLES.filter((role) => chosen.includes(role));

  return (
    <Card title="Organization passkey policy">
      {saved && <Alert kind="info">The passkey policy is saved.</Alert>}
      <form onSubmit={ask} aria-label="Passkey policy" className="stack">
        <fieldset className="scopes">
          <legend>Roles that must sign in with a passkey</legend>
          {OPERATOR_ROLES.map((role) => (
            <label key={role} className="check">
              <input type="checkbox" name="passkey-role" checked={chosen.includes(role)} onChange={() => toggle(role)} /> {roleName(role)}
            </label>
          ))}
        </fieldset>
        <Button type="submit" disabled={unchanged}>
          Save policy…
        </Button>
      </form>
      <ConfirmDialog
        title="Change the organization's passkey policy?"
        open={confirming}
        onClose={() => setConfirming(false)}
        confirmLabel="Save policy"
        variant="primary"
        stepUp
        onConfirm={async () => {
          const policy: PasskeyPolicy = { passkeyRequiredRoles: ordered };
          const org = await api<OrganizationView>('PUT', '/org/passkey-policy', policy);
          setConfirming(false);
          setSaved(true);
          props.onChanged(org.passkeyRequiredRoles);
        }}
      >
        <p>
          {ordered.length === 0
            ? 'No role will need a passkey: an authenticator code completes every sign-in again.'
            : `Members who are ${ordered.map(roleName).join(', ')} must sign in with a passkey: those without one create one at their next sign-in, and an authenticator code no longer completes it.`}
        </p>
      </ConfirmDialog>
    </Card>
  );
}
