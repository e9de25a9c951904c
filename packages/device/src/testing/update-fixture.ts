/**
 * A firmware update server for the agent's tests, and a reference for the server's layout: real
 * TUF metadata built and signed here with @tufjs/models (real ed25519 keys), served by a real
 * node:https server (mutual TLS requested; the director requires it) on an ephemeral port:
 *
 *   GET /tuf/<org>/metadata/<v>.root.json               root (consistent_snapshot: true)
 *   GET /tuf/<org>/metadata/timestamp.json              timestamp → snapshot version
 *   GET /tuf/<org>/metadata/<v>.snapshot.json           snapshot → targets.json, product-<p>.json versions
 *   GET /tuf/<org>/metadata/<v>.targets.json            top-level targets: delegates product-<p>, paths [<p>/*]
 *   GET /tuf/<org>/metadata/<v>.product-<p>.json        each product line's images (its own release key)
 *   GET /tuf/<org>/targets/<p>/<sha256>.firmware-<version>.bin   the image; `Range: bytes=N-` → 206
 *   GET /device/v1/updates/director/root.json           director root (a TUF root; its targets role = director key)
 *   GET /device/v1/updates/director/<v>.root.json       each director root version (the rotation chain)
 *   GET /device/v1/updates/director/targets.json        this device's director targets (client certificate CN = device ID)
 *   GET /device/v1/updates/metadata.json?directorRoot=&root=   the above in one answer (UpdateMetadata): the newer roots,
 *                                                       the device's director targets and every other metadata file
 *                                                       served (`bundles = false`: 404, a platform from before the route)
 *
 * Tests play attacker by changing what is served: `files` (metadata by path), `imageBehaviour`
 * (tampered, endless or stalling images), publish options (expired timestamp, targets signed by
 * another key), director options (other device, rogue key, unknown target).
 */
import { createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import {
  BUNDLED_ROOTS,
  DIRECTOR_ROOT_PATH,
  DIRECTOR_TARGETS_PATH,
  directorRootPath,
  productRoleOf,
  targetNameOf,
  tufMetadataPath,
  tufTargetsPath,
  UPDATE_METADATA_PATH,
  type DirectorTargetCustom,
  type ImageTargetCustom,
  type UpdateMetadata,
} from '@bulwark/protocol';
import { canonicalize } from '@tufjs/canonical-json';
import { Key, Metadata, MetaFile, Root, Signature, Snapshot, TargetFile, Targets, Timestamp } from '@tufjs/models';
import { Delegations } from '@tufjs/models/dist/delegations.js';
import { DelegatedRole } from '@tufjs/models/dist/role.js';
import type { TestPki } from './update-pki.js';

const DAY = 86_400_000;
const SPEC = '1.0.0';

/** An ed25519 signing key in TUF form. */
export class TufKey {
  readonly privateKey: KeyObject;
  readonly key: Key;

  constructor() {
    this.privateKey = generateKeyPairSync('ed25519').privateKey;
    const der = createPublicKey(this.privateKey).export({ type: 'spki', format: 'der' });
    const body = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: der.subarray(der.length - 32).toString('hex') } };
    const keyID = createHash('sha256').update(canonicalize(body)).digest('hex');
    this.key = new Key({ keyID, keyType: body.keytype, scheme: body.scheme, keyVal: body.keyval });
  }

  get id(): string {
    return this.key.keyID;
  }

  signer(): (data: Buffer) => Signature {
    return (data) => new Signature({ keyID: this.id, sig: sign(null, data, this.privateKey).toString('hex') });
  }
}

export interface FixtureRelease {
  version: string;
  securityVersion: number;
  hardwareIds: string[];
  image: Buffer;
  /** The product line whose release key signs it (default the fixture's product; others: addProductLine). */
  product?: string;
  /** What its signed custom.product says (default `product`). */
  customProduct?: string;
}

interface ProductLine {
  key: TufKey;
  version: number;
}

export interface ImageBehaviour {
  /** Serve these bytes instead of the signed image (a tampered image). */
  body?: Buffer;
  /** After the image, keep sending data until the client hangs up. */
  endless?: boolean;
  /** Send this many bytes, then nothing (connection held open), `stalls` times. */
  stallAfter?: number;
  stalls?: number;
  /** Ignore Range and answer 200 with the whole body. */
  ignoreRange?: boolean;
}

export interface PublishOptions {
  /** Expiry of the new timestamp (a past date: a frozen repository). */
  timestampExpires?: Date;
  /** Who signs the top-level targets (default the current targets key). */
  targetsSigner?: TufKey;
}

/** A delegated role of a hand-built delegation tree (publishTree). */
export interface TreeRole {
  /** Its images, by target path. */
  images?: Record<string, Buffer>;
  delegations?: Delegations;
  /** Who signs it: need not be the keys its delegator names (that is the attack). */
  signers: TufKey[];
}

export interface DirectOptions {
  hardwareId: string;
  rolloutId?: string;
  /** The deviceId written into custom (default: the device the metadata is served to). */
  customDeviceId?: string;
  /** Signing key (default the director key). */
  signer?: TufKey;
  expires?: Date;
  /** Sign this version instead of the next one. */
  version?: number;
}

export interface ServedRequest {
  path: string;
  range: string | undefined;
  status: number;
  deviceId: string | null;
  /** The TLS connection it came on (1 for the first the fixture accepted, and so on). */
  connection: number;
}

export const FIXTURE_ORG = 'org-fixture';
export const FIXTURE_PRODUCT = 'prod-fixture';

export class UpdateFixture {
  readonly org = FIXTURE_ORG;
  readonly productId = FIXTURE_PRODUCT;
  readonly keys = {
    root: new TufKey(),
    targets: new TufKey(),
    snapshot: new TufKey(),
    timestamp: new TufKey(),
    release: new TufKey(),
    director: new TufKey(),
  };
  /** Metadata bodies by URL path (tests may replace them: that is the attack). */
  readonly files = new Map<string, Buffer>();
  readonly imageBehaviour = new Map<string, ImageBehaviour>();
  readonly requests: ServedRequest[] = [];
  readonly releases: FixtureRelease[] = [];
  /** The root a device is provisioned with (version 1), and the director root. */
  initialRoot!: Buffer;
  directorRoot!: Buffer;
  private rootVersion = 0;
  private directorRootVersion = 0;
  private targetsVersion = 0;
  private snapshotVersion = 0;
  private timestampVersion = 0;
  private readonly directorVersions = new Map<string, number>();
  private readonly directorFiles = new Map<string, Buffer>();
  /** Every director root version by its versioned path. */
  private readonly directorRoots = new Map<string, Buffer>();
  private readonly images = new Map<string, Buffer>();
  private readonly productLines = new Map<string, ProductLine>([[FIXTURE_PRODUCT, { key: this.keys.release, version: 0 }]]);
  private server!: https.Server;
  port = 0;
  /** Serves UPDATE_METADATA_PATH; false answers it 404, as a platform from before the route. */
  bundles = true;
  /** TLS connections accepted so far, each a handshake (full or resumed). */
  connections = 0;
  private readonly connectionNumbers = new WeakMap<object, number>();

  private constructor() {}

  static async start(pki: TestPki): Promise<UpdateFixture> {
    const fixture = new UpdateFixture();
    fixture.initialRoot = fixture.signRoot();
    fixture.directorRoot = fixture.signDirectorRoot();
    fixture.publish();
    fixture.server = https.createServer(
      { ca: pki.ca, cert: pki.server.cert, key: pki.server.key, requestCert: true, rejectUnauthorized: false },
      (req, res) => fixture.handle(req, res),
    );
    fixture.server.on('secureConnection', (socket) => fixture.connectionNumbers.set(socket, ++fixture.connections));
    await new Promise<void>((resolve) => fixture.server.listen(0, '127.0.0.1', resolve));
    fixture.port = (fixture.server.address() as { port: number }).port;
    return fixture;
  }

  get baseUrl(): string {
    return `https://localhost:${this.port}`;
  }

  metadataPath(file: string): string {
    return `${tufMetadataPath(this.org)}${file}`;
  }

  imagePath(release: FixtureRelease): string {
    const sha = createHash('sha256').update(release.image).digest('hex');
    return `${tufTargetsPath(this.org)}${release.product ?? this.productId}/${sha}.firmware-${release.version}.bin`;
  }

  targetName(version: string, product = this.productId): string {
    return targetNameOf(product, version);
  }

  /** Another product line, delegated by the top-level targets to its own release key (published from the next publish on). */
  addProductLine(productId: string): TufKey {
    const key = new TufKey();
    this.productLines.set(productId, { key, version: 0 });
    return key;
  }

  /** Root metadata version `rootVersion + 1`: the targets role holds `targetsKey`. Signed by the root key. */
  private signRoot(targetsKey: TufKey = this.keys.targets): Buffer {
    const root = new Root({
      version: ++this.rootVersion,
      specVersion: SPEC,
      expires: iso(Date.now() + 365 * DAY),
      consistentSnapshot: true,
    });
    root.addKey(this.keys.root.key, 'root');
    root.addKey(targetsKey.key, 'targets');
    root.addKey(this.keys.snapshot.key, 'snapshot');
    root.addKey(this.keys.timestamp.key, 'timestamp');
    const bytes = signed(root, this.keys.root);
    this.files.set(this.metadataPath(`${this.rootVersion}.root.json`), bytes);
    return bytes;
  }

  /** The director's root: same root key, its targets role = the director's online key. */
  private signDirectorRoot(): Buffer {
    return this.signDirectorRootWith([this.keys.root]);
  }

  private signDirectorRootWith(signers: TufKey[]): Buffer {
    const root = new Root({
      version: ++this.directorRootVersion,
      specVersion: SPEC,
      expires: iso(Date.now() + 365 * DAY),
      consistentSnapshot: false,
    });
    root.addKey(this.keys.root.key, 'root');
    root.addKey(this.keys.director.key, 'targets');
    root.addKey(this.keys.director.key, 'snapshot');
    root.addKey(this.keys.director.key, 'timestamp');
    const bytes = signed(root, ...signers);
    this.directorRoots.set(directorRootPath(this.directorRootVersion), bytes);
    return bytes;
  }

  /** A new director key in director root version + 1, signed by `signers` (default the root key: a valid rotation). */
  rotateDirectorKey(signers: TufKey[] = [this.keys.root]): TufKey {
    this.keys.director = new TufKey();
    this.directorRoot = this.signDirectorRootWith(signers);
    return this.keys.director;
  }

  /** Root rotation that replaces the targets key (the old one is revoked); returns the new key. */
  rotateTargetsKey(): TufKey {
    const next = new TufKey();
    this.signRoot(next);
    this.keys.targets = next;
    return next;
  }

  /** Adds a release (signed by the release key into product-<p>) and re-publishes. */
  addRelease(release: FixtureRelease, options: PublishOptions = {}): FixtureRelease {
    this.releases.push(release);
    this.images.set(this.imagePath(release), release.image);
    this.publish(options);
    return release;
  }

  /** Signs new product, top-level targets, snapshot and timestamp metadata (each version + 1). */
  publish(options: PublishOptions = {}): void {
    const expires = iso(Date.now() + 365 * DAY);
    const roles: Record<string, DelegatedRole> = {};
    const keys: Record<string, Key> = {};
    const meta: Record<string, MetaFile> = {};
    for (const [productId, line] of this.productLines) {
      const product = new Targets({ version: ++line.version, specVersion: SPEC, expires });
      for (const r of this.releases.filter((release) => (release.product ?? this.productId) === productId)) {
        const custom: ImageTargetCustom = {
          product: r.customProduct ?? productId,
          version: r.version,
          securityVersion: r.securityVersion,
          hardwareIds: r.hardwareIds,
        };
        const name = this.targetName(r.version, productId);
        product.addTarget(
          new TargetFile({
            path: name,
            length: r.image.length,
            hashes: { sha256: sha256(r.image) },
            unrecognizedFields: { custom: custom as never },
          }),
        );
      }
      const role = productRoleOf(productId);
      this.files.set(this.metadataPath(`${line.version}.${role}.json`), signed(product, line.key));
      roles[role] = new DelegatedRole({ name: role, keyIDs: [line.key.id], threshold: 1, terminating: true, paths: [`${productId}/*`] });
      keys[line.key.id] = line.key.key;
      meta[`${role}.json`] = new MetaFile({ version: line.version });
    }
    const targets = new Targets({
      version: ++this.targetsVersion,
      specVersion: SPEC,
      expires,
      delegations: new Delegations({ keys, roles }),
    });
    this.files.set(this.metadataPath(`${this.targetsVersion}.targets.json`), signed(targets, options.targetsSigner ?? this.keys.targets));

    const snapshot = new Snapshot({
      version: ++this.snapshotVersion,
      specVersion: SPEC,
      expires: iso(Date.now() + 7 * DAY),
      meta: { 'targets.json': new MetaFile({ version: this.targetsVersion }), ...meta },
    });
    this.files.set(this.metadataPath(`${this.snapshotVersion}.snapshot.json`), signed(snapshot, this.keys.snapshot));

    const timestamp = new Timestamp({
      version: ++this.timestampVersion,
      specVersion: SPEC,
      expires: iso(options.timestampExpires?.getTime() ?? Date.now() + DAY),
      snapshotMeta: new MetaFile({ version: this.snapshotVersion }),
    });
    this.files.set(this.metadataPath('timestamp.json'), signed(timestamp, this.keys.timestamp));
  }

  /**
   * Publishes a delegation tree of the test's own instead of the product lines (delegation-graph
   * tests): top-level targets with `delegations`, signed by the targets key, each role of `roles`
   * signed by its `signers`, then snapshot and timestamp. Its images are served as any release's.
   */
  publishTree(delegations: Delegations, roles: Record<string, TreeRole>): void {
    const expires = iso(Date.now() + 365 * DAY);
    const version = ++this.targetsVersion;
    const meta: Record<string, MetaFile> = { 'targets.json': new MetaFile({ version }) };
    this.files.set(
      this.metadataPath(`${version}.targets.json`),
      signed(new Targets({ version, specVersion: SPEC, expires, delegations }), this.keys.targets),
    );
    for (const [name, role] of Object.entries(roles)) {
      const body = new Targets({ version, specVersion: SPEC, expires, ...(role.delegations ? { delegations: role.delegations } : {}) });
      for (const [path, image] of Object.entries(role.images ?? {})) {
        body.addTarget(new TargetFile({ path, length: image.length, hashes: { sha256: sha256(image) } }));
        const dir = path.includes('/') ? `${path.slice(0, path.lastIndexOf('/'))}/` : '';
        this.images.set(`${tufTargetsPath(this.org)}${dir}${sha256(image)}.${path.slice(dir.length)}`, image);
      }
      this.files.set(this.metadataPath(`${version}.${encodeURIComponent(name)}.json`), signed(body, ...role.signers));
      meta[`${name}.json`] = new MetaFile({ version });
    }
    const snapshot = new Snapshot({ version: ++this.snapshotVersion, specVersion: SPEC, expires, meta });
    this.files.set(this.metadataPath(`${this.snapshotVersion}.snapshot.json`), signed(snapshot, this.keys.snapshot));
    const timestamp = new Timestamp({
      version: ++this.timestampVersion,
      specVersion: SPEC,
      expires,
      snapshotMeta: new MetaFile({ version: this.snapshotVersion }),
    });
    this.files.set(this.metadataPath('timestamp.json'), signed(timestamp, this.keys.timestamp));
  }

  /** Versions of the metadata last published. */
  get versions(): { root: number; targets: number; product: number; snapshot: number; timestamp: number } {
    return {
      root: this.rootVersion,
      targets: this.targetsVersion,
      product: this.productLines.get(this.productId)!.version,
      snapshot: this.snapshotVersion,
      timestamp: this.timestampVersion,
    };
  }

  /**
   * Signs director targets for `deviceId` naming `target` (a release, or any name/length/hash for
   * a target the repository lacks), or none (null).
   */
  direct(
    deviceId: string,
    target: FixtureRelease | { name: string; length: number; sha256: string } | null,
    options: DirectOptions,
  ): Buffer {
    const version = options.version ?? (this.directorVersions.get(deviceId) ?? 0) + 1;
    this.directorVersions.set(deviceId, Math.max(version, this.directorVersions.get(deviceId) ?? 0));
    const metadata = new Targets({ version, specVersion: SPEC, expires: iso(options.expires?.getTime() ?? Date.now() + DAY) });
    if (target) {
      const t =
        'image' in target
          ? { name: this.targetName(target.version, target.product), length: target.image.length, sha256: sha256(target.image) }
          : target;
      const custom: DirectorTargetCustom = {
        deviceId: options.customDeviceId ?? deviceId,
        hardwareId: options.hardwareId,
        rolloutId: options.rolloutId ?? 'rollout-1',
      };
      metadata.addTarget(
        new TargetFile({ path: t.name, length: t.length, hashes: { sha256: t.sha256 }, unrecognizedFields: { custom: custom as never } }),
      );
    }
    const bytes = signed(metadata, options.signer ?? this.keys.director);
    this.directorFiles.set(deviceId, bytes);
    return bytes;
  }

  /** Serves `bytes` as the device's director targets as they are (a replay). */
  serveDirector(deviceId: string, bytes: Buffer): void {
    this.directorFiles.set(deviceId, bytes);
  }

  served(pathPart: string): ServedRequest[] {
    return this.requests.filter((r) => r.path.includes(pathPart));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    const socket = req.socket as TLSSocket;
    const subjectCn = socket.authorized ? socket.getPeerCertificate().subject?.CN : undefined;
    const cn = typeof subjectCn === 'string' ? subjectCn : null;
    const connection = this.connectionNumbers.get(socket) ?? 0;
    const log = (status: number) => this.requests.push({ path, range: req.headers.range, status, deviceId: cn, connection });
    if (path === UPDATE_METADATA_PATH && this.bundles) {
      if (!cn) return send(res, 401, Buffer.from('{"error":{"code":"auth.required","message":"client certificate required"}}'), log);
      const body = this.updateMetadata(new URL(req.url ?? '/', 'https://x').searchParams, cn);
      return body ? send(res, 200, body, log) : send(res, 404, Buffer.from('{}'), log);
    }
    if (path === DIRECTOR_ROOT_PATH || path === DIRECTOR_TARGETS_PATH) {
      if (!cn) return send(res, 401, Buffer.from('{"error":{"code":"auth.required","message":"client certificate required"}}'), log);
      const body = path === DIRECTOR_ROOT_PATH ? this.directorRoot : this.directorFiles.get(cn);
      return body ? send(res, 200, body, log) : send(res, 404, Buffer.from('{}'), log);
    }
    const directorRoot = this.directorRoots.get(path);
    if (directorRoot) return cn ? send(res, 200, directorRoot, log) : send(res, 401, Buffer.from('{}'), log);
    const file = this.files.get(path);
    if (file) return send(res, 200, file, log);
    const image = this.images.get(path);
    if (image) return this.sendImage(req, res, path, image, log);
    send(res, 404, Buffer.from('{}'), log);
  }

  /**
   * The check's one answer for a device trusting director root `directorRoot` and image root
   * `root`: the newer roots of each (at most BUNDLED_ROOTS), its director targets, and every other
   * metadata file served now (whatever a test made of them), so what a device reads through it is
   * what it would fetch alone. Null (404) when nothing is directed to the device.
   */
  private updateMetadata(query: URLSearchParams, deviceId: string): Buffer | null {
    const targets = this.directorFiles.get(deviceId);
    if (!targets) return null;
    const newer = (trusted: number) => (version: number) => version > trusted && version <= trusted + BUNDLED_ROOTS;
    const directorRoot = newer(Number(query.get('directorRoot')));
    const root = newer(Number(query.get('root')));
    const roots: string[] = [];
    for (let version = 1; version <= this.directorRootVersion; version++) {
      const bytes = this.directorRoots.get(directorRootPath(version));
      if (bytes && directorRoot(version)) roots.push(bytes.toString('utf8'));
    }
    const prefix = this.metadataPath('');
    const files: Record<string, string> = {};
    for (const [path, bytes] of this.files) {
      const name = path.slice(prefix.length);
      const rootVersion = /^(\d+)\.root\.json$/.exec(name);
      if (path.startsWith(prefix) && (!rootVersion || root(Number(rootVersion[1])))) files[name] = bytes.toString('utf8');
    }
    const answer: UpdateMetadata = {
      director: { roots, latestRoot: this.directorRootVersion, targets: targets.toString('utf8') },
      repository: { latestRoot: this.rootVersion, files },
    };
    return Buffer.from(JSON.stringify(answer));
  }

  private sendImage(req: IncomingMessage, res: ServerResponse, path: string, image: Buffer, log: (status: number) => void): void {
    const behaviour = this.imageBehaviour.get(path) ?? {};
    const body = behaviour.body ?? image;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range && !behaviour.ignoreRange ? Number(range[1]) : 0;
    if (start > body.length) return send(res, 416, Buffer.alloc(0), log);
    const status = start > 0 ? 206 : 200;
    log(status);
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
    if (status === 206) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    if (!behaviour.endless) headers['content-length'] = body.length - start;
    res.writeHead(status, headers);
    const rest = body.subarray(start);
    if (behaviour.stallAfter !== undefined && (behaviour.stalls ?? 1) > 0) {
      behaviour.stalls = (behaviour.stalls ?? 1) - 1;
      res.write(rest.subarray(0, Math.max(0, behaviour.stallAfter - start)));
      return; // holds the connection open and silent
    }
    if (!behaviour.endless) return void res.end(rest);
    res.write(rest);
    const junk = Buffer.alloc(64 * 1024, 0x5a);
    const pump = () => {
      while (!res.destroyed && res.write(junk));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  }
}

function send(res: ServerResponse, status: number, body: Buffer, log: (status: number) => void): void {
  log(status);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

function signed(body: Root | Targets | Snapshot | Timestamp, ...keys: TufKey[]): Buffer {
  const metadata = new Metadata(body);
  for (const key of keys) metadata.sign(key.signer(), true);
  return Buffer.from(JSON.stringify(metadata.toJSON()));
}

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const iso = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/** A recognisable test image of `size` bytes. */
export function testImage(label: string, size = 64 * 1024): Buffer {
  const seed = createHash('sha256').update(label).digest();
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += seed.length) seed.copy(out, i);
  return out;
}
