/**
 * A software WebAuthn authenticator for the passkey tests: real P-256 ECDSA keys (node:crypto),
 * real CBOR attestation objects (fmt "none") with authenticator data, real clientDataJSON, and
 * assertions signed over authenticatorData || SHA-256(clientDataJSON), as a browser and a
 * platform authenticator would hand them to a page. Each ceremony can be bent the ways an
 * attacker would bend it (another origin or RP ID, no user verification, another key, an old
 * counter) so the tests can see each one refused.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { encode } from 'cborg';

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

export interface SoftCredential {
  id: string;
  rpId: string;
  userHandle: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  counter: number;
}

/** How to bend one ceremony (an attacker's or a broken client's answer). */
export interface Tamper {
  /** The origin written into clientDataJSON (a phishing page's). */
  origin?: string;
  /** The RP ID whose hash goes into authenticatorData. */
  rpId?: string;
  /** Leave out the user-verified flag. */
  noUserVerification?: boolean;
  /** The challenge answered, instead of the options'. */
  challenge?: string;
  /** Sign with this key instead of the credential's. */
  signWith?: KeyObject;
  /** The signature counter to report (a clone's stale one). */
  counter?: number;
  /** Answer with this credential (by ID) whatever the options allow. */
  credentialId?: string;
  /** The user handle to report. */
  userHandle?: string;
}

interface CreationOptions {
  challenge: string;
  rp: { id?: string };
  user: { id: string };
}

interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: Array<{ id: string }>;
}

const b64 = (data: Buffer) => data.toString('base64url');
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();

function counterBytes(counter: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(counter);
  return out;
}

/** The credential public key as a COSE_Key (EC2, P-256, ES256). */
function coseKey(publicKey: KeyObject): Uint8Array {
  const jwk = publicKey.export({ format: 'jwk' });
  return encode(
    new Map<number, number | Uint8Array>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x!, 'base64url')],
      [-3, Buffer.from(jwk.y!, 'base64url')],
    ]),
  );
}

export class SoftwareAuthenticator {
  readonly credentials = new Map<string, SoftCredential>();

  constructor(
    /** The origin of the page the "browser" shows (the platform's). */
    readonly origin: string,
  ) {}

  /** navigator.credentials.create(): a new discoverable credential, as RegistrationResponseJSON. */
  create(options: CreationOptions, tamper: Tamper = {}) {
    const rpId = options.rp.id ?? new URL(this.origin).hostname;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const id = randomBytes(16);
    const credential: SoftCredential = { id: b64(id), rpId, userHandle: options.user.id, privateKey, publicKey, counter: 0 };
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(id.length);
    const authData = Buffer.concat([
      sha256(tamper.rpId ?? rpId),
      Buffer.from([FLAG_UP | FLAG_AT | (tamper.noUserVerification ? 0 : FLAG_UV)]),
      counterBytes(0),
      Buffer.alloc(16),
      idLength,
      id,
      Buffer.from(coseKey(publicKey)),
    ]);
    const clientDataJSON = this.clientData('webauthn.create', tamper.challenge ?? options.challenge, tamper.origin);
    const attestationObject = Buffer.from(encode({ fmt: 'none', attStmt: {}, authData }));
    this.credentials.set(credential.id, credential);
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key' as const,
      response: { clientDataJSON: b64(clientDataJSON), attestationObject: b64(attestationObject), transports: ['internal'] },
      authenticatorAttachment: 'platform' as const,
      clientExtensionResults: {},
    };
  }

  /** navigator.credentials.get(): an assertion, as AuthenticationResponseJSON. */
  get(options: RequestOptions, tamper: Tamper = {}) {
    const rpId = options.rpId ?? new URL(this.origin).hostname;
    const allowed = (options.allowCredentials ?? []).map((c) => c.id);
    const credential = tamper.credentialId
      ? this.credentials.get(tamper.credentialId)
      : [...this.credentials.values()].find((c) => c.rpId === rpId && (allowed.length === 0 || allowed.includes(c.id)));
    if (!credential) throw new Error('the authenticator holds no credential these options allow');
    credential.counter += 1;
    const authData = Buffer.concat([
      sha256(tamper.rpId ?? rpId),
      Buffer.from([FLAG_UP | (tamper.noUserVerification ? 0 : FLAG_UV)]),
      counterBytes(tamper.counter ?? credential.counter),
    ]);
    const clientDataJSON = this.clientData('webauthn.get', tamper.challenge ?? options.challenge, tamper.origin);
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), tamper.signWith ?? credential.privateKey);
    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key' as const,
      response: {
        clientDataJSON: b64(clientDataJSON),
        authenticatorData: b64(authData),
        signature: b64(signature),
        userHandle: tamper.userHandle ?? credential.userHandle,
      },
      authenticatorAttachment: 'platform' as const,
      clientExtensionResults: {},
    };
  }

  /** A copy of this authenticator's keys and counters (a cloned authenticator). */
  clone(): SoftwareAuthenticator {
    const copy = new SoftwareAuthenticator(this.origin);
    for (const [id, c] of this.credentials) copy.credentials.set(id, { ...c });
    return copy;
  }

  private clientData(type: string, challenge: string, origin?: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin: origin ?? this.origin, crossOrigin: false }));
  }
}

/** A P-256 key no credential was registered with (to sign as someone else). */
export function strangerKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}
