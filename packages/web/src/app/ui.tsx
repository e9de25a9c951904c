/**
 * The companion app's small helpers beside the shared kit (../kit.tsx): running an action with a
 * busy flag and the API's error shown in words a consumer understands, and a status badge.
 */
import { useCallback, useState, type FormEvent, type ReactNode } from 'react';
import { ApiError } from '../api';

/** What to tell a consumer for the API's stable error codes (docs/binding.md); anything else: the API's own message. */
const MESSAGES: Record<string, string> = {
  'binding.claim_code_invalid': 'No device has this code. Check it against the code on the box or the device, and type it again.',
  'binding.claim_code_used':
    'This code was used already. If the device is yours, ask whoever added it to share it with you, or to remove it first.',
  'binding.device_already_bound':
    'This device already belongs to someone. Its owner must remove it from their account before you can add it.',
  'binding.presence_required': 'Press the pairing button on the device first, then add it within 2 minutes.',
  'binding.presence_expired': 'The pairing time ran out. Press the pairing button on the device again, then add it.',
  'binding.role_insufficient': 'Only the owner of this device can do that. Ask the owner.',
  'binding.command_not_allowed': 'This device does not accept that command from the app.',
  'auth.email_not_verified': 'Confirm your email address first: open the link we sent you, or ask for a new one below.',
  'auth.invalid_credentials': 'The email address or password is not right.',
  'resource.not_found': 'This device is not (or no longer) in your account.',
};

export function errorMessage(caught: unknown): string {
  if (!(caught instanceof ApiError)) return 'The service could not be reached; check your connection and try again.';
  const known = MESSAGES[caught.code];
  if (caught.code === 'binding.claim_locked') return `${caught.message} Too many wrong codes: wait, then try again.`;
  return known ?? caught.message;
}

/** An action with a busy flag and its error (or null), for buttons and forms. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ message: string; code: string } | null>(null);
  const run = useCallback(async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (caught) {
      setError({ message: errorMessage(caught), code: caught instanceof ApiError ? caught.code : 'network' });
    } finally {
      setBusy(false);
    }
  }, []);
  const submit = (action: () => Promise<void>) => (event: FormEvent) => {
    event.preventDefault();
    void run(action);
  };
  return { busy, error, run, submit, setError };
}

export function Badge(props: { kind: string; children: ReactNode }) {
  return <span className={`badge badge-${props.kind}`}>{props.children}</span>;
}
