/**
 * Keeps the HTTPS and MQTTS server certificate current without a restart. With the platform's own
 * certificate (DIR/pki/server.pem), a check issues a fresh one from the server issuing CA (same
 * names, new key) once it is within `http.certificateRenewDays` of expiry, writes it to the data
 * directory and swaps it into the running listeners; a certificate replaced on disk by someone else
 * (`bulwark pki import-issuing`, another node sharing the directory) is picked up the same way. Of the
 * workers of one node, only the first renews (`renews`); the others pick its certificate up so.
 * With operator files (`http.tlsCertFile`/`tlsKeyFile`, e.g. renewed by certbot), a check re-reads
 * them and swaps them in when they changed, unless the key does not match the certificate (then the
 * old pair stays and an error is logged). A swap only changes what new handshakes see: connections
 * already open keep going.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import type { SecretBox } from '../keys/master-key.js';
import type { Pkcs11Token } from '../keys/pkcs11.js';
import { issueServerCertificate, loadServerTls, openCaKey, pkiPaths, writeFileAtomic } from './ca.js';

const DAY_MS = 86_400_000;

export interface ServerTls {
  cert: string;
  key: string;
}

export interface RenewalLog {
  info(details: object, message: string): void;
  error(details: object, message: string): void;
}

export interface ServerCertificateRenewalOptions {
  dataDir: string;
  box: SecretBox;
  token: (() => Pkcs11Token) | null;
  clock: Clock;
  audit: AuditService;
  /** Operator-supplied pair; null: the platform-issued certificate of the data directory. */
  files: { cert: string; key: string } | null;
  renewDays: number;
  /** False: this process only follows what another one renews (the workers of a node but the first). */
  renews?: boolean;
  serverNames: string[];
  log: RenewalLog;
}

export type RenewalOutcome = 'unchanged' | 'renewed' | 'reloaded' | 'refused';

export class ServerCertificateRenewal {
  private readonly listeners: ((tls: ServerTls) => void)[] = [];
  private running: Promise<RenewalOutcome> | null = null;

  constructor(
    private readonly options: ServerCertificateRenewalOptions,
    private current: ServerTls,
  ) {}

  /** The pair the listeners serve now. */
  get tls(): ServerTls {
    return this.current;
  }

  /** Where a new pair goes (each listener's setSecureContext). */
  onChange(listener: (tls: ServerTls) => void): void {
    this.listeners.push(listener);
  }

  /** One check; concurrent calls share it. Failures are logged, never thrown: the old pair stays. */
  check(): Promise<RenewalOutcome> {
    this.running ??= this.checkOnce()
      .catch((error: unknown) => {
        this.options.log.error({ err: error }, 'server certificate check failed: the current certificate stays');
        return 'refused' as const;
      })
      .finally(() => (this.running = null));
    return this.running;
  }

  /** Resolves once no check is running (shutdown waits for it before storage closes). */
  async settled(): Promise<void> {
    await this.running;
  }

  private async checkOnce(): Promise<RenewalOutcome> {
    const { files } = this.options;
    const onDisk = files
      ? { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') }
      : loadServerTls(this.options.dataDir, this.options.box);
    if (onDisk.cert !== this.current.cert || onDisk.key !== this.current.key) {
      const problem = mismatch(onDisk);
      if (problem) {
        this.options.log.error(
          { certFile: files?.cert ?? pkiPaths(this.options.dataDir).serverCert, problem },
          'server certificate on disk refused: the current certificate stays',
        );
        return 'refused';
      }
      await this.swap({ cert: onDisk.cert, key: onDisk.key }, files ? 'file' : 'data_directory');
      return 'reloaded';
    }
    if (files || this.options.renews === false) return 'unchanged';
    const notAfter = new Date(new X509Certificate(this.current.cert).validTo).getTime();
    if (notAfter - this.options.clock.now() > this.options.renewDays * DAY_MS) return 'unchanged';
    await this.swap(await this.issue(), 'renewed');
    return 'renewed';
  }

  /** A new certificate from the server issuing CA (the single CA on a data directory from before the hierarchy). */
  private async issue(): Promise<ServerTls> {
    const paths = pkiPaths(this.options.dataDir);
    const legacy = !existsSync(paths.serverCaCert);
    const signer = await openCaKey(paths.dir, legacy ? 'ca' : 'server-ca', { box: this.options.box, token: this.options.token });
    if (!signer) throw new Error(`The server issuing CA key is not in ${paths.dir}: the server certificate cannot be renewed here`);
    const caCert = new x509.X509Certificate(readFileSync(legacy ? paths.caCert : paths.serverCaCert, 'utf8'));
    const organization = /^O=(.*)$/m.exec(new X509Certificate(this.current.cert).subject)?.[1] ?? 'Bulwark';
    const issued = await issueServerCertificate(
      { cert: caCert, signer },
      organization,
      this.options.serverNames,
      new Date(this.options.clock.now()),
    );
    // Key first: a reader between the two renames sees a pair that does not match and keeps its own.
    writeFileAtomic(paths.serverKey, this.options.box.seal(issued.keyPem, 'pki:server'), 0o600);
    writeFileAtomic(paths.serverCert, issued.chainPem, 0o644);
    return { cert: issued.chainPem, key: issued.keyPem };
  }

  private async swap(next: ServerTls, how: 'renewed' | 'file' | 'data_directory'): Promise<void> {
    const before = new X509Certificate(this.current.cert);
    const after = new X509Certificate(next.cert);
    for (const listener of this.listeners) listener(next);
    this.current = next;
    const details = {
      how,
      serial: after.serialNumber,
      notAfter: new Date(after.validTo).toISOString(),
      previousSerial: before.serialNumber,
      previousNotAfter: new Date(before.validTo).toISOString(),
    };
    this.options.log.info(details, 'server certificate swapped into the HTTPS and MQTTS listeners');
    await this.options.audit.record({
      organizationId: null,
      actor: { type: 'system', id: null },
      action: 'pki.server_certificate_renewed',
      target: { type: 'certificate', id: after.serialNumber },
      details,
    });
  }
}

/** Why a certificate/key pair cannot serve, or null when it can. */
function mismatch(pair: ServerTls): string | null {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pair.cert);
  } catch {
    return 'the certificate file does not hold a PEM certificate';
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(pair.key))) return 'the key does not match the certificate';
  } catch {
    return 'the key file does not hold a PEM private key';
  }
  return null;
}
