/**
 * The passkey (WebAuthn) ceremonies of both faces, console and companion app, in one place: the
 * platform's options go to the browser through @simplewebauthn/browser (which does the base64url
 * encoding both ways) and its answer back to the API. A ceremony the person cancels, or that the
 * browser refuses, becomes an ApiError with a code of its own so pages show it like any API error.
 */
import {
  browserSupportsWebAuthn,
  startAuthentication,
  startRegistration,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
} from '@simplewebauthn/browser';
import { api, ApiError, type PasskeyView, type SignInAnswer } from '../api';

export const passkeysSupported = (): boolean => browserSupportsWebAuthn();

/** The browser's part of a ceremony; its refusals in words (NotAllowedError: cancelled, timed out or no matching passkey). */
async function inBrowser<T>(ceremony: () => Promise<T>): Promise<T> {
  try {
    return await ceremony();
  } catch (caught) {
    const name = caught instanceof Error ? caught.name : '';
    if (name === 'InvalidStateError')
      throw new ApiError(0, 'passkey.already_registered', 'This authenticator already holds a passkey for your account');
    if (name === 'NotAllowedError')
      throw new ApiError(0, 'passkey.cancelled', 'No passkey was used (the prompt was cancelled, timed out or found none); try again');
    throw new ApiError(0, 'passkey.browser_refused', `This browser refused the passkey: ${(caught as Error).message}`);
  }
}

async function assert(optionsPath: string, body?: unknown) {
  const { options } = await api<{ options: PublicKeyCredentialRequestOptionsJSON }>('POST', optionsPath, body);
  return inBrowser(() => startAuthentication({ optionsJSON: options }));
}

/**
 * Registers a passkey on this device under `name`. A full session needs a recent step-up first;
 * a sign-in that the passkey policy holds back gets its next session in the answer.
 */
export async function registerPasskey(name: string): Promise<{ passkey: PasskeyView; session?: SignInAnswer }> {
  const { options } = await api<{ options: PublicKeyCredentialCreationOptionsJSON }>('POST', '/auth/passkeys/registration/options');
  const response = await inBrowser(() => startRegistration({ optionsJSON: options }));
  return api('POST', '/auth/passkeys/registration/verify', { response, name });
}

/** Passwordless sign-in (the options name no account: the passkey says whose it is), as a cookie session. */
export async function signInWithPasskey(): Promise<SignInAnswer> {
  const response = await assert('/auth/passkeys/authentication/options', { mode: 'cookie' });
  return api('POST', '/auth/passkeys/authentication/verify', { response, mode: 'cookie' });
}

/** The second step of a password sign-in, with a passkey instead of a code. */
export async function passkeyAsSecondFactor(): Promise<SignInAnswer> {
  const response = await assert('/auth/passkeys/mfa/options');
  return api('POST', '/auth/passkeys/mfa/verify', { response });
}

/** Re-proves a factor with a passkey before a dangerous action (instead of a code or the password). */
export async function stepUpWithPasskey(): Promise<void> {
  const response = await assert('/auth/passkeys/step-up/options');
  await api('POST', '/auth/passkeys/step-up/verify', { response });
}

export const listPasskeys = async (): Promise<PasskeyView[]> => (await api<{ passkeys: PasskeyView[] }>('GET', '/auth/passkeys')).passkeys;

export const removePasskey = (id: string) => api('DELETE', `/auth/passkeys/${encodeURIComponent(id)}`);
export const renamePasskey = (id: string, name: string) => api<PasskeyView>('PATCH', `/auth/passkeys/${encodeURIComponent(id)}`, { name });
