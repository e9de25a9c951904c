/**
 * The TLS policy of both listeners (HTTPS API and MQTT broker), checked by handshaking with each
 * cipher suite the policy refuses or allows: TLS 1.2 offers only ECDHE with AES-GCM or
 * ChaCha20-Poly1305 (no CBC, no SHA-1), TLS 1.3 works, TLS 1.1 is refused; and no session is
 * resumed, with either version.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ConnectionOptions } from 'node:tls';
import { ENGINES } from '../testing/engines.js';
import { useBrokerSuite } from '../testing/broker-suite.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;

/** The suite the server picked, or the handshake error's code. */
function handshake(port: number, ca: string, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...options });
    socket.once('secureConnect', () => {
      resolve(socket.getCipher().standardName);
      socket.destroy();
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(`refused: ${error.code ?? error.message}`));
  });
}

/** Whether a second connection, offering the session the server gave the first, resumed it. */
async function resumed(port: number, ca: string, version: 'TLSv1.2' | 'TLSv1.3'): Promise<boolean> {
  const options: ConnectionOptions = { host: '127.0.0.1', port, ca, servername: 'localhost', minVersion: version, maxVersion: version };
  const session = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect(options);
    // With TLS 1.3 the session (its ticket) arrives after the handshake; with 1.2, at its end.
    socket.once('session', (offered: Buffer) => {
      resolve(offered);
      socket.destroy();
    });
    socket.once('error', reject);
  });
  return new Promise((resolve, reject) => {
    const socket = connect({ ...options, session });
    socket.once('secureConnect', () => {
      resolve(socket.isSessionReused());
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

describe('TLS policy of the HTTPS and MQTT listeners [sqlite]', () => {
  const s = useBrokerSuite(sqlite, {}, 'TLS');
  const listeners = () =>
    [
      ['HTTPS', s.t.server.port],
      ['MQTT', s.port],
    ] as const;

  it('attack: TLS 1.2 with CBC or SHA-1 suites is refused on both', async () => {
    for (const [name, port] of listeners()) {
      for (const cipher of [
        'ECDHE-ECDSA-AES128-SHA',
        'ECDHE-ECDSA-AES256-SHA',
        'ECDHE-ECDSA-AES128-SHA256',
        'ECDHE-ECDSA-AES256-SHA384',
        'AES128-GCM-SHA256',
        'AES128-SHA',
      ]) {
        const result = await handshake(port, s.t.ca, { maxVersion: 'TLSv1.2', ciphers: cipher });
        assert.match(result, /^refused/, `${name} negotiated ${cipher}`);
      }
    }
  });

  it('TLS 1.2 with ECDHE AES-GCM or ChaCha20-Poly1305, and TLS 1.3, are served on both; TLS 1.1 is refused', async () => {
    for (const [name, port] of listeners()) {
      for (const cipher of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
        assert.doesNotMatch(await handshake(port, s.t.ca, { maxVersion: 'TLSv1.2', ciphers: cipher }), /^refused/, `${name} ${cipher}`);
      }
      assert.equal(await handshake(port, s.t.ca, { minVersion: 'TLSv1.3' }), 'TLS_AES_256_GCM_SHA384', name);
      assert.match(
        await handshake(port, s.t.ca, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
        /^refused/,
        name,
      );
    }
  });

  it('no TLS session is resumed on either listener, with TLS 1.2 or 1.3: each connection is a full handshake', async () => {
    for (const [name, port] of listeners()) {
      for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
        assert.equal(await resumed(port, s.t.ca, version), false, `${name} resumed a ${version} session`);
      }
    }
  });
});
