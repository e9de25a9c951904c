/**
 * The organization's operators and invitations: find by email (cursor pages), change a role
 * (confirmation and step-up, as the API demands), disable or enable an account, lift a lockout,
 * reset a lost second factor (step-up); invite by email in a role, withdraw an invitation.
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, OPERATOR_ROLES, query, type OperatorInvitationView, type UserView } from '../api';
import { Alert, Button, Card, ConfirmDialog, Field, messageOf, Pager, Table, Select, useCursorPages, When } from '../kit';

const ROLE_OPTIONS = OPERATOR_ROLES.map((role) => ({ value: role, label: role.replace('_', ' ') }));

type UserAction = { kind: 'role' | 'status' | 'unlock' | 'mfa-reset'; user: UserView };

export function Users() {
  return (
    <>
      <h1>Users and invitations</h1>
      <Operators />
      <Invitations />
    </>
  );
}

function Operators() {
  const [email, setEmail] = useState('');
  const [filter, setFilter] = useState('');
  const [acting, setActing] = useState<UserAction | null>(null);
  const [role, setRole] = useState<string>('operator');
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(
    (after: string | null) =>
      api<{ users: UserView[]; nextCursor: string | null }>('GET', `/users${query({ kind: 'operator', email: filter, after, limit: 50 })}`),
    [filter],
  );
  const { paging, shown, reload } = useCursorPages(load, setError);

  const search = (event: FormEvent) => {
    event.preventDefault();
    setFilter(email.trim());
    paging.reset();
  };
  const open = (kind: UserAction['kind'], user: UserView) => {
    setRole(user.role ?? 'operator');
    setActing({ kind, user });
  };
  const perform = async () => {
    if (!acting) return;
    const path = `/users/${encodeURIComponent(acting.user.id)}`;
    const { kind, user } = acting;
    if (kind === 'role') await api('PATCH', path, { role });
    if (kind === 'status') await api('PATCH', path, { status: user.status === 'active' ? 'disabled' : 'active' });
    if (kind === 'unlock') await api('POST', `${path}/unlock`);
    if (kind === 'mfa-reset') await api('POST', `${path}/mfa-reset`);
    setActing(null);
    setNotice(
      `${user.email}: ${kind === 'role' ? `role is now ${role}` : kind === 'status' ? `account ${user.status === 'active' ? 'disabled' : 'enabled'}` : kind === 'unlock' ? 'unlocked' : 'second factor removed'}.`,
    );
    reload();
  };
  const dialog = acting && DIALOGS[acting.kind](acting.user);

  return (
    <Card title="Operators">
      {notice && <Alert kind="info">{notice}</Alert>}
      {error && <Alert>{error}</Alert>}
      <form className="filters" onSubmit={search} role="search" aria-label="Find operators">
        <Field label="Email contains" type="search" value={email} onChange={setEmail} name="email" />
        <Button type="submit">Search</Button>
      </form>
      {shown && (
        <>
          <Table
            label="Operators"
            caption={`Operators, page ${shown.number}`}
            columns={['Name', 'Email', 'Role', 'Account', 'Second factor', 'Since', '']}
          >
            {shown.rows.users.map((user) => (
              <tr key={user.id} data-testid="user">
                <td>{user.name}</td>
                <td>{user.email}</td>
                <td>{user.role}</td>
                <td>
                  <span className={`badge badge-${user.status}`}>{user.status}</span>
                  {user.locked && ' locked'}
                  {user.mustChangePassword && ' (first sign-in pending)'}
                </td>
                <td>{user.mfaEnabled ? 'authenticator' : 'none'}</td>
                <td>
                  <When at={user.createdAt} />
                </td>
                <td className="row-actions">
                  <Button variant="secondary" onClick={() => open('role', user)}>
                    Change role…
                  </Button>
                  <Button variant="secondary" onClick={() => open('status', user)}>
                    {user.status === 'active' ? 'Disable…' : 'Enable…'}
                  </Button>
                  {user.locked && (
                    <Button variant="secondary" onClick={() => open('unlock', user)}>
                      Unlock…
                    </Button>
                  )}
                  {user.mfaEnabled && (
                    <Button variant="secondary" onClick={() => open('mfa-reset', user)}>
                      Reset second factor…
                    </Button>
                  )}
                </td>
              </tr>
            ))}
          </Table>
          {shown.rows.users.length === 0 && <p>No operator matches.</p>}
          <Pager paging={paging} shown={shown} />
        </>
      )}
      <ConfirmDialog
        title={dialog?.title ?? ''}
        open={acting !== null}
        onClose={() => setActing(null)}
        confirmLabel={dialog?.confirm ?? ''}
        stepUp={dialog?.stepUp}
        onConfirm={perform}
      >
        <p>{dialog?.says}</p>
        {acting?.kind === 'role' && <Select label="New role" value={role} onChange={setRole} options={ROLE_OPTIONS} />}
      </ConfirmDialog>
    </Card>
  );
}

const DIALOGS: Record<UserAction['kind'], (user: UserView) => { title: string; confirm: string; says: string; stepUp: boolean }> = {
  role: (user) => ({
    title: `Change the role of ${user.email}?`,
    confirm: 'Change role',
    says: 'Their sessions end at once; they sign in again with the new role.',
    stepUp: true,
  }),
  status: (user) =>
    user.status === 'active'
      ? {
          title: `Disable ${user.email}?`,
          confirm: 'Disable account',
          says: 'They are signed out at once and cannot sign in.',
          stepUp: false,
        }
      : { title: `Enable ${user.email}?`, confirm: 'Enable account', says: 'They may sign in again.', stepUp: false },
  unlock: (user) => ({ title: `Unlock ${user.email}?`, confirm: 'Unlock', says: 'Their sign-in lockout is lifted now.', stepUp: false }),
  'mfa-reset': (user) => ({
    title: `Remove the second factor of ${user.email}?`,
    confirm: 'Remove second factor',
    says: 'For a lost authenticator: they sign in with their password alone and, where their role needs one, enrol a new authenticator.',
    stepUp: true,
  }),
};

function Invitations() {
  const [invitations, setInvitations] = useState<OperatorInvitationView[]>([]);
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState('operator');
  const [withdrawing, setWithdrawing] = useState<OperatorInvitationView | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api<{ invitations: OperatorInvitationView[] }>('GET', '/invitations')
      .then((answer) => setInvitations(answer.invitations))
      .catch((caught: unknown) => setError(messageOf(caught)));
  }, []);
  useEffect(load, [load]);

  const invite = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const { invitation } = await api<{ invitation: OperatorInvitationView }>('POST', '/invitations', {
        email: email.trim(),
        name: name.trim(),
        role,
      });
      setNotice(`Invitation sent to ${invitation.email}; it expires ${invitation.expiresAt.slice(0, 16).replace('T', ' ')} UTC.`);
      setEmail('');
      setName('');
      load();
    } catch (caught) {
      setError(messageOf(caught));
    }
  };

  return (
    <Card title="Invitations">
      {notice && <Alert kind="info">{notice}</Alert>}
      {error && <Alert>{error}</Alert>}
      <form className="filters" onSubmit={invite} aria-label="Invite an operator">
        <Field label="Email" type="email" value={email} onChange={setEmail} required name="invite-email" />
        <Field label="Name" value={name} onChange={setName} required name="invite-name" />
        <Select label="Role" value={role} onChange={setRole} options={ROLE_OPTIONS} />
        <Button type="submit">Invite</Button>
      </form>
      <Table label="Pending invitations" caption="Pending invitations" columns={['Email', 'Name', 'Role', 'Sent', 'Expires', '']}>
        {invitations.map((invitation) => (
          <tr key={invitation.id} data-testid="invitation">
            <td>{invitation.email}</td>
            <td>{invitation.name}</td>
            <td>{invitation.role}</td>
            <td>
              <When at={invitation.createdAt} />
            </td>
            <td>
              <When at={invitation.expiresAt} />
            </td>
            <td>
              <Button variant="secondary" onClick={() => setWithdrawing(invitation)}>
                Withdraw
              </Button>
            </td>
          </tr>
        ))}
      </Table>
      {invitations.length === 0 && <p>No pending invitation.</p>}
      <ConfirmDialog
        title={`Withdraw the invitation of ${withdrawing?.email ?? ''}?`}
        open={withdrawing !== null}
        onClose={() => setWithdrawing(null)}
        confirmLabel="Withdraw invitation"
        onConfirm={async () => {
          await api('DELETE', `/invitations/${encodeURIComponent(withdrawing!.id)}`);
          setWithdrawing(null);
          load();
        }}
      >
        <p>The link mailed stops working at once.</p>
      </ConfirmDialog>
    </Card>
  );
}
