/**
 * The TLS settings every listener of the platform uses (the HTTPS API and the MQTT broker): TLS
 * 1.2 or 1.3 only, and with TLS 1.2 only forward-secret AEAD suites (ECDHE with AES-GCM or
 * ChaCha20-Poly1305): no CBC, no SHA-1 MACs, no static RSA key exchange. The RSA suites are for a
 * deployment that brings its own RSA server certificate (`http.tlsCertFile`). TLS 1.3 suites are
 * all AEAD; they are listed so the string states the whole policy.
 *
 * No session is ever resumed: every connection is a full handshake, its client certificate verified
 * and checked anew. OpenSSL's default would make the server encrypt two session tickets after each
 * TLS 1.3 handshake (serialising the session, client certificate included, and decoding it again),
 * about an eighth of the handshake's CPU, for clients that do not resume (a device connects once and
 * stays connected; the agent's update is one connection) and for tickets no other worker or node
 * could open (each process draws its own ticket keys). SSL_OP_NO_TICKET turns that off: with TLS 1.3
 * OpenSSL then sends tickets naming a server-side session cache, which Node does not keep unless the
 * server listens for 'newSession', so a client's attempt to resume is a full handshake.
 */
import { constants } from 'node:crypto';

const TLS13 = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256'];
const TLS12 = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

export const SERVER_TLS = {
  minVersion: 'TLSv1.2',
  ciphers: [...TLS13, ...TLS12].join(':'),
  honorCipherOrder: true,
  secureOptions: constants.SSL_OP_NO_TICKET,
} as const;
