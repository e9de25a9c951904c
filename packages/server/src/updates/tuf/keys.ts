/**
 * Ed25519 keys in TUF form: a node:crypto key becomes a TUF `Key` (keyval = raw public key in hex,
 * keyid = SHA-256 of the key's canonical JSON, as the specification computes it).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import { Key } from '@tufjs/models';

/** The 32 raw bytes of an Ed25519 public key, in hex. */
export function ed25519PublicHex(publicKey: KeyObject): string {
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new Error(`expected an Ed25519 key, got ${publicKey.asymmetricKeyType}`);
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return der.subarray(der.length - 32).toString('hex');
}

export function tufKeyOf(publicKey: KeyObject): Key {
  const body = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: ed25519PublicHex(publicKey) } };
  const keyID = createHash('sha256').update(canonicalize(body)).digest('hex');
  return new Key({ keyID, keyType: body.keytype, scheme: body.scheme, keyVal: body.keyval });
}
