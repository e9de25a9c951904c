/**
 * The one typed configuration object: defaults, then `DIR/config.json`, then `BULWARK_*`
 * environment variables, validated at start with messages that name the bad key.
 *
 * Environment names are derived from the config path: `http.port` is `BULWARK_HTTP_PORT`,
 * `sessions.idleTimeoutMinutes` is `BULWARK_SESSIONS_IDLE_TIMEOUT_MINUTES`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { Type, type Static, type TSchema } from 'typebox';
// typebox/schema, not typebox/value: the same Check and Errors (Value's are wrappers) for 140 fewer
// modules, which every CLI command would load.
import { Check, Errors } from 'typebox/schema';
import { ValidationError } from '../errors.js';
import { serverPackageRoot } from '../package-root.js';
import { SCRAPE_TOKEN_HASH_PATTERN } from './scrape-token.js';

/** The most worker processes one node runs (`node.workers`). */
export const MAX_WORKERS = 256;

const Port = Type.Integer({ minimum: 0, maximum: 65535, description: '0 picks a free port' });

export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1, description: 'Directory holding keys, the SQLite database and the outbox' }),
    database: Type.Object(
      {
        url: Type.String({
          description: '`sqlite` (a file in the data directory) or a postgres:// URL',
          pattern: '^(sqlite|postgres(ql)?://.+)$',
        }),
        poolSize: Type.Integer({ minimum: 1, maximum: 200 }),
        telemetryWriterThread: Type.Boolean({
          description:
            'SQLite: a running server commits telemetry batches from a worker thread, off the event loop (on by default; false: on the event loop; docs/operations.md)',
        }),
      },
      { additionalProperties: false },
    ),
    http: Type.Object(
      {
        host: Type.String({ minLength: 1 }),
        port: Port,
        publicUrl: Type.Optional(Type.String({ pattern: '^https://' })),
        tlsCertFile: Type.Optional(Type.String({ minLength: 1 })),
        tlsKeyFile: Type.Optional(Type.String({ minLength: 1 })),
        serverNames: Type.Array(Type.String({ minLength: 1 })),
        certificateRenewDays: Type.Integer({
          minimum: 1,
          maximum: 365,
          description: 'the platform-issued HTTPS/MQTTS server certificate is renewed this many days before it expires',
        }),
        certificateCheckMinutes: Type.Integer({
          minimum: 1,
          maximum: 1440,
          description: 'how often the server certificate is checked: renewal window, or tlsCertFile/tlsKeyFile changed on disk',
        }),
        bodyLimitBytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024 }),
        rateLimitPerMinute: Type.Integer({ minimum: 1 }),
        trustProxy: Type.Boolean(),
        shutdownGraceMs: Type.Integer({
          minimum: 0,
          maximum: 600_000,
          description: 'at shutdown, how long requests in flight may finish before every remaining connection is ended',
        }),
        consoleDir: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
          description: 'the built web console (packages/web/dist), served at /console/; null: no console',
        }),
      },
      { additionalProperties: false },
    ),
    mqtt: Type.Object(
      {
        enabled: Type.Boolean({ description: 'Run the MQTT broker in this process' }),
        host: Type.String({ minLength: 1 }),
        port: Port,
        plainPort: Type.Union([Port, Type.Null()], { description: 'Plain MQTT without TLS, for token devices only; null keeps it closed' }),
        redisUrl: Type.Union([Type.String({ pattern: '^rediss?://' }), Type.Null()], {
          description: 'Redis for MQTT routing and sessions across nodes (redis://host:port/db); null: this node alone',
        }),
        maxPacketBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024 }),
        maxConnections: Type.Integer({ minimum: 1 }),
        connectsPerSecond: Type.Integer({ minimum: 1 }),
        publishesPerSecond: Type.Integer({ minimum: 1 }),
        publishBurst: Type.Integer({ minimum: 1 }),
        readingsPerSecond: Type.Integer({
          minimum: 1,
          description: 'telemetry readings per second per device (a batch counts each reading)',
        }),
        readingsBurst: Type.Integer({ minimum: 1 }),
        bytesPerSecond: Type.Integer({ minimum: 1024, description: 'PUBLISH payload bytes per second per device' }),
        bytesBurst: Type.Integer({ minimum: 1024 }),
        watchIntervalMs: Type.Integer({ minimum: 50, maximum: 60_000 }),
        maxBatch: Type.Integer({ minimum: 1, maximum: 100_000 }),
        maxPending: Type.Integer({ minimum: 1 }),
        maxSubscriptionsPerSession: Type.Integer({
          minimum: 1,
          maximum: 10_000,
          description: 'topic filters one MQTT session may hold; more are refused in the SUBACK',
        }),
        maxFiltersPerSubscribe: Type.Integer({
          minimum: 1,
          maximum: 1000,
          description: 'topic filters in one SUBSCRIBE or UNSUBSCRIBE; more closes the connection',
        }),
        maxConnectBytes: Type.Integer({
          minimum: 256,
          maximum: 16 * 1024 * 1024,
          description: 'largest CONNECT (will included) accepted before authentication',
        }),
        connectTimeoutMs: Type.Integer({
          minimum: 100,
          maximum: 120_000,
          description: 'time for the TLS handshake, and then for the CONNECT, before the connection is closed',
        }),
        deviceConnectsPerMinute: Type.Integer({
          minimum: 1,
          maximum: 60_000,
          description: 'connections one device may open per minute (after a burst of 10); more are refused at CONNECT',
        }),
        maxChildrenPerGateway: Type.Integer({
          minimum: 1,
          maximum: 10_000,
          description: 'child devices one gateway may have attached; more are refused (gateway.children_limit)',
        }),
        gatewayRegistrationsPerMinute: Type.Integer({
          minimum: 1,
          maximum: 10_000,
          description: 'children one gateway may register per minute over MQTT; more are refused (gateway.registration_rate)',
        }),
        jitRegistrationsPerSecond: Type.Integer({
          minimum: 1,
          maximum: 10_000,
          description: 'new devices this node registers just in time per second (MQTT and EST together); more are refused (jit.busy)',
        }),
        jitConcurrency: Type.Integer({
          minimum: 1,
          maximum: 64,
          description: 'just-in-time registrations this node runs at once; more are refused at once (jit.busy), never queued',
        }),
      },
      { additionalProperties: false },
    ),
    sessions: Type.Object(
      {
        idleTimeoutMinutes: Type.Integer({ minimum: 1, maximum: 7 * 24 * 60 }),
        absoluteTimeoutHours: Type.Integer({ minimum: 1, maximum: 90 * 24 }),
        stepUpMinutes: Type.Integer({ minimum: 1, maximum: 60 }),
      },
      { additionalProperties: false },
    ),
    retention: Type.Object(
      {
        sessionsDays: Type.Integer({
          minimum: 1,
          maximum: 3650,
          description: 'sessions ended (signed out, revoked, expired or idle) longer ago than this are deleted, daily',
        }),
        outboxDays: Type.Integer({
          minimum: 1,
          maximum: 3650,
          description: 'mail files in DIR/outbox older than this are deleted, daily (the audit log is never pruned)',
        }),
      },
      { additionalProperties: false },
    ),
    auth: Type.Object(
      {
        lockoutThreshold: Type.Integer({ minimum: 3, maximum: 100 }),
        lockoutMinutes: Type.Integer({ minimum: 1, maximum: 24 * 60 }),
        loginRateLimitPerMinute: Type.Integer({ minimum: 1 }),
        resetTokenMinutes: Type.Integer({ minimum: 5, maximum: 24 * 60 }),
        verifyTokenHours: Type.Integer({ minimum: 1, maximum: 14 * 24 }),
        inviteTokenHours: Type.Integer({ minimum: 1, maximum: 30 * 24 }),
        deviceTokenMaxLifetimeSeconds: Type.Integer({
          minimum: 60,
          maximum: 24 * 60 * 60,
          description: 'longest a symmetric-key device token (SAS) may be valid; bounds replay',
        }),
      },
      { additionalProperties: false },
    ),
    passkeys: Type.Object(
      {
        rpId: Type.Optional(
          Type.String({ minLength: 1, maxLength: 253, description: 'WebAuthn relying party ID (default: the host of http.publicUrl)' }),
        ),
        rpName: Type.String({ minLength: 1, maxLength: 64, description: 'the name authenticators show for this deployment' }),
        origins: Type.Optional(
          Type.Array(Type.String({ pattern: '^https://[^/]+$' }), {
            minItems: 1,
            maxItems: 16,
            description: 'origins whose WebAuthn responses are accepted (default: the origin of http.publicUrl)',
          }),
        ),
        challengeSeconds: Type.Integer({ minimum: 30, maximum: 600, description: 'how long a ceremony challenge may be answered' }),
        maxPerUser: Type.Integer({ minimum: 1, maximum: 100, description: 'passkeys one user may register' }),
      },
      { additionalProperties: false },
    ),
    smtp: Type.Object(
      {
        host: Type.Optional(Type.String({ minLength: 1 })),
        port: Port,
        secure: Type.Boolean(),
        user: Type.Optional(Type.String()),
        password: Type.Optional(Type.String()),
        from: Type.String({ minLength: 3 }),
      },
      { additionalProperties: false },
    ),
    audit: Type.Object(
      {
        checkpointIntervalSeconds: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    backup: Type.Object(
      {
        intervalHours: Type.Integer({
          minimum: 0,
          maximum: 24 * 31,
          description: 'hours between scheduled backups (0: none; run them on one node of a cluster)',
        }),
        directory: Type.Optional(
          Type.String({ minLength: 1, description: 'where scheduled backups are written (outside the data directory)' }),
        ),
        keyFile: Type.Optional(
          Type.String({ minLength: 1, description: 'backup key file (bulwark backup keygen); otherwise BULWARK_BACKUP_PASSPHRASE' }),
        ),
        keep: Type.Integer({ minimum: 1, maximum: 1000, description: 'scheduled backups kept; older ones are deleted' }),
      },
      { additionalProperties: false },
    ),
    assessment: Type.Object(
      {
        intervalMinutes: Type.Integer({
          minimum: 0,
          maximum: 7 * 24 * 60,
          description: 'minutes between scheduled audit check runs over every organization (0: on demand only)',
        }),
        certificateExpiryDays: Type.Integer({
          minimum: 1,
          maximum: 3650,
          description: 'a device or CA certificate ending within this many days is a finding',
        }),
        symmetricKeyMaxAgeDays: Type.Integer({
          minimum: 1,
          maximum: 3650,
          description: 'a device symmetric key older than this is a finding',
        }),
        apiKeyMaxLifetimeDays: Type.Integer({
          minimum: 1,
          maximum: 3650,
          description: 'an API key valid for longer than this from now is a finding (no effective expiry)',
        }),
        backupMaxAgeHours: Type.Integer({
          minimum: 1,
          maximum: 24 * 365,
          description: 'no backup.created audit entry within this is a finding',
        }),
        drillMaxAgeDays: Type.Integer({ minimum: 1, maximum: 3650, description: 'no backup.drilled audit entry within this is a finding' }),
        metadataExpiryDays: Type.Integer({
          minimum: 1,
          maximum: 3650,
          description: 'TUF or director metadata expiring within this many days is a finding',
        }),
        maxRateLimitPerMinute: Type.Integer({
          minimum: 1,
          description: 'an HTTP or login rate limit above this per minute counts as off (a weak setting)',
        }),
        webhookPrivateAddresses: Type.Boolean({
          description: 'allow finding webhooks to loopback, private and link-local addresses (a receiver inside your network)',
        }),
        advisoryPrivateAddresses: Type.Boolean({
          description: 'allow advisory imports from URLs on loopback, private and link-local addresses (a mirror inside your network)',
        }),
        certificateMaxAgeDays: Type.Integer({
          minimum: 1,
          maximum: 3650,
          description: 'an active device certificate issued longer ago than this is a finding (rotate it)',
        }),
        resourcesPerFinding: Type.Integer({
          minimum: 1,
          maximum: 1000,
          description: 'affected resources a finding lists; the rest are counted',
        }),
        testResultsFile: Type.Optional(
          Type.String({
            minLength: 1,
            description:
              'the test results of this build (test-results.json, written by npm test) that the compliance report cites; default: the one at the root of the installed build',
          }),
        ),
      },
      { additionalProperties: false },
    ),
    anomaly: Type.Object(
      {
        enabled: Type.Boolean({ description: 'count device behaviour per minute and run the anomaly detector (docs/assessment.md)' }),
        flushSeconds: Type.Integer({
          minimum: 1,
          maximum: 60,
          description: 'seconds between writes of the in-memory behaviour counts to device_behaviour_minutes',
        }),
        evaluateSeconds: Type.Integer({ minimum: 1, maximum: 3600, description: 'seconds between anomaly detector ticks' }),
        retentionDays: Type.Integer({ minimum: 1, maximum: 366, description: 'days behaviour minutes, addresses and takeovers are kept' }),
        maxTrackedDevices: Type.Integer({
          minimum: 1,
          description: 'devices whose behaviour one node counts at once (bounds its memory; beyond it, counts are not kept)',
        }),
        historyHours: Type.Integer({
          minimum: 1,
          maximum: 14 * 24,
          description: "hours of a device's own minutes its baseline is learned from",
        }),
        minHistoryMinutes: Type.Integer({
          minimum: 1,
          maximum: 14 * 24 * 60,
          description: 'minutes of history a device needs before its own baseline may raise a finding',
        }),
        minPeers: Type.Integer({
          minimum: 2,
          description: "devices of a product active in a minute before the product's baseline applies",
        }),
        maxCandidates: Type.Integer({ minimum: 1, description: 'devices whose history one detector tick loads (highest values first)' }),
        resolveAfterMinutes: Type.Integer({
          minimum: 1,
          maximum: 7 * 24 * 60,
          description: 'an anomaly finding not observed again for this long is resolved',
        }),
        conflictWindowHours: Type.Integer({
          minimum: 1,
          maximum: 14 * 24,
          description: 'hours of session takeovers the shared-certificate and client-ID checks look at',
        }),
      },
      { additionalProperties: false },
    ),
    disclosure: Type.Object(
      {
        contact: Type.Optional(
          Type.String({
            pattern: '^(mailto:|https://)',
            maxLength: 512,
            description: 'security.txt Contact (mailto: or https://); default the report intake <publicUrl>/api/v1/disclosures',
          }),
        ),
        policy: Type.Optional(
          Type.String({ pattern: '^https://', maxLength: 512, description: 'security.txt Policy: the disclosure policy page' }),
        ),
        expiresDays: Type.Integer({
          minimum: 1,
          maximum: 365,
          description: 'security.txt Expires: this many days from the time it is served',
        }),
        preferredLanguages: Type.String({
          pattern: '^[A-Za-z-]{2,16}(, ?[A-Za-z-]{2,16})*$',
          maxLength: 200,
          description: 'security.txt Preferred-Languages (comma-separated language tags)',
        }),
        acknowledgeDays: Type.Integer({
          minimum: 1,
          maximum: 90,
          description: 'a report must be triaged within this many days of receipt',
        }),
        resolveDays: Type.Integer({
          minimum: 1,
          maximum: 730,
          description: 'a report must be fixed or rejected within this many days of receipt',
        }),
        reportsPerHour: Type.Integer({ minimum: 1, maximum: 1000, description: 'public reports one source address may send per hour' }),
        maxUntriagedReports: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          description: 'untriaged reports an organization holds at most; more are answered alike but dropped (audited)',
        }),
      },
      { additionalProperties: false },
    ),
    telemetry: Type.Object(
      {
        retentionDays: Type.Integer({
          minimum: 1,
          maximum: 3650,
          description: 'days of telemetry kept for products that set no retention of their own',
        }),
        pruneIntervalMinutes: Type.Integer({
          minimum: 1,
          maximum: 7 * 24 * 60,
          description: 'how often a server deletes expired telemetry',
        }),
        pruneBatchRows: Type.Integer({
          minimum: 100,
          maximum: 100_000,
          description: 'rows deleted per statement: each is its own short transaction',
        }),
        dailyReadingsPerDevice: Type.Integer({
          minimum: 1,
          description: 'readings a device may store per UTC day, for products that set no quota of their own',
        }),
        dailyBytesPerDevice: Type.Integer({
          minimum: 1024,
          description: 'telemetry payload bytes a device may store per UTC day, for products that set no quota of their own',
        }),
      },
      { additionalProperties: false },
    ),
    binding: Type.Object(
      {
        presenceWindowSeconds: Type.Integer({
          minimum: 10,
          maximum: 3600,
          description: 'how long a button press on a device keeps its claim window open',
        }),
        presenceReportsPerMinute: Type.Integer({ minimum: 1, maximum: 600, description: 'button presses a device may report per minute' }),
        claimFailuresPerAccount: Type.Integer({
          minimum: 1,
          maximum: 1000,
          description: 'failed claims a consumer may make in claimFailureWindowSeconds before claiming is locked',
        }),
        claimFailuresPerAddress: Type.Integer({
          minimum: 1,
          maximum: 10_000,
          description: 'failed claims one source address may make in claimFailureWindowSeconds before claiming is locked',
        }),
        claimFailureWindowSeconds: Type.Integer({ minimum: 10, maximum: 86400 }),
        claimLockoutSeconds: Type.Integer({ minimum: 10, maximum: 86400 }),
        invitationHours: Type.Integer({ minimum: 1, maximum: 30 * 24, description: 'how long a share or transfer invitation stands' }),
        maxMembersPerDevice: Type.Integer({ minimum: 1, maximum: 1000, description: 'members, guests and pending invitations per device' }),
        maxLiveStreamsPerConsumer: Type.Integer({
          minimum: 1,
          maximum: 1000,
          description: 'live-state streams one consumer may hold open',
        }),
        liveStreamMaxSeconds: Type.Integer({
          minimum: 10,
          maximum: 86400,
          description: 'a live-state stream ends after this long (the app reconnects, re-authenticated)',
        }),
        consumerCommands: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' }), {
          maxItems: 64,
          description: 'commands a member or owner may send from the companion app; no other command reaches a device from a consumer',
        }),
      },
      { additionalProperties: false },
    ),
    updates: Type.Object(
      {
        maxImageBytes: Type.Integer({ minimum: 1024, maximum: 8 * 1024 ** 3, description: 'largest firmware image an upload may carry' }),
        timestampExpirySeconds: Type.Integer({
          minimum: 60,
          maximum: 30 * 86400,
          description: 'lifetime of the TUF timestamp metadata (online key); refreshed before half of it has passed',
        }),
        snapshotExpirySeconds: Type.Integer({
          minimum: 60,
          maximum: 365 * 86400,
          description: 'lifetime of the TUF snapshot metadata (online key)',
        }),
        directorExpirySeconds: Type.Integer({
          minimum: 60,
          maximum: 30 * 86400,
          description: "lifetime of a device's director targets metadata",
        }),
        refreshIntervalSeconds: Type.Integer({
          minimum: 1,
          maximum: 86400,
          description: 'how often a server re-signs online metadata that nears expiry',
        }),
        rolloutTickSeconds: Type.Integer({
          minimum: 1,
          maximum: 3600,
          description: 'how often a server advances or halts running rollouts',
        }),
        blobQuotaBytes: Type.Integer({
          minimum: 1024,
          description: 'image bytes one organization may hold in the blob store, uploads in progress included',
        }),
        orphanBlobGraceHours: Type.Integer({
          minimum: 1,
          maximum: 90 * 24,
          description: 'how long an uploaded image no release names is kept before the hourly sweep deletes it',
        }),
      },
      { additionalProperties: false },
    ),
    apps: Type.Object(
      {
        accessTokenMinutes: Type.Integer({ minimum: 1, maximum: 60, description: 'lifetime of a companion app access token (JWT)' }),
        audience: Type.Optional(
          Type.String({ minLength: 1, maxLength: 512, description: 'the aud of access tokens (default <publicUrl>/api)' }),
        ),
        codeLifetimeSeconds: Type.Integer({ minimum: 10, maximum: 600, description: 'lifetime of an authorization code' }),
        refreshTokenDays: Type.Integer({ minimum: 1, maximum: 365, description: 'a refresh token unused this long expires' }),
        grantMaxDays: Type.Integer({
          minimum: 1,
          maximum: 3650,
          description: 'a grant (refresh-token family) ends this long after sign-in',
        }),
        keyLifetimeDays: Type.Integer({ minimum: 1, maximum: 3650, description: 'an access-token signing key is rotated after this long' }),
        keyOverlapHours: Type.Integer({
          minimum: 1,
          maximum: 24 * 90,
          description: 'a rotated signing key keeps verifying this long, then is retired (longer than an access token lives)',
        }),
        authorizeRateLimitPerMinute: Type.Integer({
          minimum: 1,
          description: 'requests to /oauth/authorize, /oauth/authorize/consent and /oauth/clients/:clientId per address per minute',
        }),
        tokenRateLimitPerMinute: Type.Integer({
          minimum: 1,
          description: 'requests to /oauth/token and /oauth/revoke per address per minute',
        }),
      },
      { additionalProperties: false },
    ),
    metrics: Type.Object(
      {
        tokenHash: Type.Optional(
          Type.String({
            pattern: SCRAPE_TOKEN_HASH_PATTERN,
            description:
              'sha256: hash of the /metrics scrape token (written by `bulwark admin metrics-token`); without it /metrics answers 401',
          }),
        ),
      },
      { additionalProperties: false },
    ),
    node: Type.Object(
      {
        workers: Type.Union([Type.Integer({ minimum: 1, maximum: MAX_WORKERS }), Type.Literal('auto')], {
          description:
            'processes serving this node (one per core: `auto`); more than 1 needs PostgreSQL and, with the broker, mqtt.redisUrl',
        }),
      },
      { additionalProperties: false },
    ),
    log: Type.Object(
      {
        level: Type.Union([
          Type.Literal('fatal'),
          Type.Literal('error'),
          Type.Literal('warn'),
          Type.Literal('info'),
          Type.Literal('debug'),
          Type.Literal('trace'),
          Type.Literal('silent'),
        ]),
      },
      { additionalProperties: false },
    ),
    keys: Type.Optional(
      Type.Object(
        {
          pkcs11: Type.Optional(
            Type.Object(
              {
                module: Type.Optional(Type.String({ minLength: 1, description: 'PKCS#11 module path (default: SoftHSM)' })),
                tokenLabel: Type.String({ minLength: 1 }),
                pinEnv: Type.Optional(
                  Type.String({
                    pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
                    description: 'name of the environment variable holding the user PIN (default BULWARK_PKCS11_PIN)',
                  }),
                ),
                onlineSigningKeys: Type.Optional(
                  Type.Boolean({
                    description:
                      'generate new online signing keys (TUF snapshot, timestamp, director; audit checkpoints) on the token instead of sealing them under the master key (default false)',
                  }),
                ),
              },
              { additionalProperties: false },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

/** The console's build beside this package in the workspace or an installation (packages/web/dist). */
const DEFAULT_CONSOLE_DIR = resolve(serverPackageRoot(), '../web/dist');

export function defaultConfig(dataDir: string): Config {
  return {
    dataDir: resolve(dataDir),
    database: { url: 'sqlite', poolSize: 10, telemetryWriterThread: true },
    http: {
      host: '127.0.0.1',
      port: 8443,
      serverNames: [],
      certificateRenewDays: 30,
      certificateCheckMinutes: 60,
      bodyLimitBytes: 1024 * 1024,
      rateLimitPerMinute: 1200,
      trustProxy: false,
      shutdownGraceMs: 10_000,
      consoleDir: DEFAULT_CONSOLE_DIR,
    },
    mqtt: {
      enabled: true,
      host: '127.0.0.1',
      port: 8883,
      plainPort: null,
      redisUrl: null,
      maxPacketBytes: 256 * 1024,
      maxConnections: 100_000,
      connectsPerSecond: 1000,
      publishesPerSecond: 200,
      publishBurst: 1000,
      readingsPerSecond: 500,
      readingsBurst: 5000,
      bytesPerSecond: 256 * 1024,
      bytesBurst: 1024 * 1024,
      watchIntervalMs: 250,
      maxBatch: 5000,
      maxPending: 50_000,
      maxSubscriptionsPerSession: 32,
      maxFiltersPerSubscribe: 16,
      maxConnectBytes: 16 * 1024,
      connectTimeoutMs: 10_000,
      deviceConnectsPerMinute: 30,
      maxChildrenPerGateway: 256,
      gatewayRegistrationsPerMinute: 60,
      jitRegistrationsPerSecond: 20,
      jitConcurrency: 4,
    },
    sessions: { idleTimeoutMinutes: 30, absoluteTimeoutHours: 12, stepUpMinutes: 5 },
    retention: { sessionsDays: 30, outboxDays: 30 },
    auth: {
      lockoutThreshold: 10,
      lockoutMinutes: 15,
      loginRateLimitPerMinute: 30,
      resetTokenMinutes: 30,
      verifyTokenHours: 48,
      inviteTokenHours: 72,
      deviceTokenMaxLifetimeSeconds: 3600,
    },
    passkeys: { rpName: 'Bulwark', challengeSeconds: 300, maxPerUser: 20 },
    smtp: { port: 587, secure: false, from: 'Bulwark <no-reply@bulwark.invalid>' },
    audit: { checkpointIntervalSeconds: 300 },
    backup: { intervalHours: 0, keep: 7 },
    assessment: {
      intervalMinutes: 60,
      certificateExpiryDays: 30,
      symmetricKeyMaxAgeDays: 365,
      apiKeyMaxLifetimeDays: 365,
      backupMaxAgeHours: 48,
      drillMaxAgeDays: 90,
      metadataExpiryDays: 7,
      maxRateLimitPerMinute: 100_000,
      resourcesPerFinding: 50,
      webhookPrivateAddresses: false,
      advisoryPrivateAddresses: false,
      certificateMaxAgeDays: 825,
    },
    anomaly: {
      enabled: true,
      flushSeconds: 5,
      evaluateSeconds: 60,
      retentionDays: 14,
      maxTrackedDevices: 200_000,
      historyHours: 24,
      minHistoryMinutes: 60,
      minPeers: 10,
      maxCandidates: 1000,
      resolveAfterMinutes: 60,
      conflictWindowHours: 24,
    },
    disclosure: {
      expiresDays: 365,
      preferredLanguages: 'en',
      acknowledgeDays: 7,
      resolveDays: 90,
      reportsPerHour: 5,
      maxUntriagedReports: 1000,
    },
    telemetry: {
      retentionDays: 90,
      pruneIntervalMinutes: 60,
      pruneBatchRows: 5000,
      dailyReadingsPerDevice: 200_000,
      dailyBytesPerDevice: 64 * 1024 ** 2,
    },
    binding: {
      presenceWindowSeconds: 120,
      presenceReportsPerMinute: 6,
      claimFailuresPerAccount: 5,
      claimFailuresPerAddress: 20,
      claimFailureWindowSeconds: 900,
      claimLockoutSeconds: 900,
      invitationHours: 72,
      maxMembersPerDevice: 16,
      maxLiveStreamsPerConsumer: 8,
      liveStreamMaxSeconds: 3600,
      consumerCommands: ['identify'],
    },
    updates: {
      maxImageBytes: 512 * 1024 ** 2,
      timestampExpirySeconds: 86400,
      snapshotExpirySeconds: 7 * 86400,
      directorExpirySeconds: 86400,
      refreshIntervalSeconds: 60,
      rolloutTickSeconds: 5,
      blobQuotaBytes: 10 * 1024 ** 3,
      orphanBlobGraceHours: 24,
    },
    apps: {
      accessTokenMinutes: 10,
      codeLifetimeSeconds: 60,
      refreshTokenDays: 30,
      grantMaxDays: 90,
      keyLifetimeDays: 90,
      keyOverlapHours: 24,
      authorizeRateLimitPerMinute: 60,
      tokenRateLimitPerMinute: 60,
    },
    metrics: {},
    node: { workers: 1 },
    log: { level: 'info' },
  };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function envName(path: string[]): string {
  return 'BULWARK_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** Reads `BULWARK_*` variables for every leaf of the schema, converting to the leaf's type. */
function fromEnvironment(schema: TSchema, env: NodeJS.ProcessEnv, path: string[] = []): Record<string, Json> {
  const out: Record<string, Json> = {};
  const properties = (schema as { properties?: Record<string, TSchema> }).properties ?? {};
  for (const [key, child] of Object.entries(properties)) {
    const childPath = [...path, key];
    if ((child as { type?: string }).type === 'object') {
      const nested = fromEnvironment(child, env, childPath);
      if (Object.keys(nested).length > 0) out[key] = nested;
      continue;
    }
    const raw = env[envName(childPath)];
    if (raw === undefined || raw === '') continue;
    // A nullable leaf (`Type.Union([X, Type.Null()])`) takes X's type, and the word `null`.
    const variants = (child as { anyOf?: { type?: string }[] }).anyOf;
    const type = (child as { type?: string }).type ?? variants?.find((v) => v.type !== 'null')?.type;
    if (variants && raw.trim() === 'null') out[key] = null;
    // A number or a word (`node.workers`: 3 or `auto`): a value that is not a number stays a word.
    else if (variants?.some((v) => v.type === 'string') && !/^\s*-?\d/.test(raw)) out[key] = raw.trim();
    else if (type === 'integer' || type === 'number') out[key] = raw.trim() === '' ? raw : Number(raw);
    else if (type === 'boolean') out[key] = raw === 'true' ? true : raw === 'false' ? false : raw;
    else if (type === 'array')
      out[key] = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    else out[key] = raw;
  }
  return out;
}

function deepMerge(base: Record<string, Json>, over: Record<string, Json>): Record<string, Json> {
  const out: Record<string, Json> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] =
      value && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object' && !Array.isArray(current)
        ? deepMerge(current, value)
        : value;
  }
  return out;
}

/** Keys taking a number or a word, with what a wrong value is told. */
const WORDED_KEYS: Record<string, string> = {
  'node.workers': `must be a whole number from 1 to ${MAX_WORKERS}, or auto (one per core)`,
};

/** Throws a ValidationError naming every bad key, its environment variable and what is expected. */
export function validateConfig(candidate: unknown): Config {
  refusePinInConfig(candidate);
  if (Check(ConfigSchema, candidate)) {
    refuseWorkersWithoutSharedState(candidate);
    return candidate;
  }
  // An unknown key also fails its `additionalProperties: false` sub-schema ("schema is false"):
  // the additionalProperties error already names it, so that echo is dropped.
  const errors = Errors(ConfigSchema, candidate)[1].filter(
    (e) => !(e.keyword === 'boolean' && e.schemaPath.endsWith('/additionalProperties')),
  );
  // A key whose variants all failed gets one line saying what it takes, not one per variant.
  const worded = (e: (typeof errors)[number]) => WORDED_KEYS[e.instancePath.split('/').filter(Boolean).join('.')];
  const problems = errors
    .filter((e) => !worded(e) || e.keyword === 'anyOf')
    .map((e) => {
      const path = e.instancePath.split('/').filter(Boolean);
      const extra = (e.params as { additionalProperties?: string[] }).additionalProperties;
      const key = extra ? [...path, ...extra].join('.') : path.join('.') || '(root)';
      const hint = extra ? 'unknown key: remove it or check its spelling' : (worded(e) ?? e.message);
      return { key, env: envName(extra ? [...path, ...extra] : path), problem: hint };
    });
  const lines = problems.map((p) => `  ${p.key} (${p.env}): ${p.problem}`).join('\n');
  throw new ValidationError(`Invalid configuration:\n${lines}`, { problems }, 'config.invalid');
}

/**
 * The deployment's public base URL, no trailing slash: `http.publicUrl`, else the first server name
 * (or localhost) on the HTTPS port. What mailed links and claim labels point at when no request
 * is there to name the listening address.
 */
export function configuredPublicUrl(http: Config['http']): string {
  return (http.publicUrl ?? `https://${http.serverNames[0] ?? 'localhost'}:${http.port}`).replace(/\/+$/, '');
}

/** How many processes serve this node: `node.workers`, `auto` being one per core of `cores`. */
export function workerCount(config: Pick<Config, 'node'>, cores: number = availableParallelism()): number {
  const { workers } = config.node;
  return workers === 'auto' ? Math.min(Math.max(1, cores), MAX_WORKERS) : workers;
}

/**
 * Several workers share what several nodes share: one PostgreSQL database (SQLite takes one writing
 * process, and its WAL checkpointer one owner) and, for the broker, Redis (MQTT sessions, retained
 * messages and routing between the processes; without it each worker's broker would be an island).
 * `auto` is refused on SQLite too: it means one per core, whatever the machine it is moved to.
 */
function refuseWorkersWithoutSharedState(config: Config): void {
  const { workers } = config.node;
  if (workers === 1) return;
  const shown = `node.workers (BULWARK_NODE_WORKERS) is ${workers}`;
  const problems: { key: string; env: string; problem: string }[] = [];
  if (!config.database.url.startsWith('postgres'))
    problems.push({
      key: 'database.url',
      env: 'BULWARK_DATABASE_URL',
      problem:
        'SQLite (the embedded database) takes one process: a node on SQLite runs one worker (node.workers 1, the default). Several workers need database.url set to a postgres:// URL',
    });
  if (config.mqtt.enabled && config.mqtt.redisUrl === null)
    problems.push({
      key: 'mqtt.redisUrl',
      env: 'BULWARK_MQTT_REDIS_URL',
      problem:
        "the MQTT broker's sessions, retained messages and routing between workers go through Redis: set mqtt.redisUrl (or turn the broker off with mqtt.enabled false)",
    });
  if (problems.length === 0) return;
  const lines = problems.map((p) => `  ${p.key} (${p.env}): ${p.problem}`).join('\n');
  throw new ValidationError(
    `Invalid configuration: ${shown}, which needs what several processes can share:\n${lines}`,
    { workers, problems },
    'config.workers_need_shared_state',
  );
}

/** A PKCS#11 PIN never sits in the config: it comes from the environment variable `keys.pkcs11.pinEnv` names. */
function refusePinInConfig(candidate: unknown): void {
  const pkcs11 = (candidate as { keys?: { pkcs11?: Record<string, unknown> } } | null)?.keys?.pkcs11;
  if (pkcs11 && typeof pkcs11 === 'object' && 'pin' in pkcs11) {
    throw new ValidationError(
      'Invalid configuration:\n  keys.pkcs11.pin: the PIN is never stored in the configuration; remove it and set it in the environment variable named by keys.pkcs11.pinEnv (default BULWARK_PKCS11_PIN)',
      { problems: [{ key: 'keys.pkcs11.pin', env: 'BULWARK_PKCS11_PIN', problem: 'the PIN comes from the environment, not the config' }] },
      'config.invalid',
    );
  }
}

export interface LoadConfigOptions {
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  /** Values given on the command line; they win over the file and the environment. */
  overrides?: Record<string, Json>;
}

export function loadConfig({ dataDir, env = process.env, overrides = {} }: LoadConfigOptions): Config {
  const base = defaultConfig(dataDir) as unknown as Record<string, Json>;
  const file = resolve(dataDir, 'config.json');
  let fromFile: Record<string, Json> = {};
  if (existsSync(file)) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, Json>;
    } catch (error) {
      throw new ValidationError(
        `Invalid configuration: ${file} is not valid JSON (${(error as Error).message})`,
        { file },
        'config.invalid',
      );
    }
  }
  const filePassword = (fromFile.smtp as Record<string, Json> | undefined)?.password;
  if (typeof filePassword === 'string' && !filePassword.startsWith('sealed:')) {
    throw new ValidationError(
      `Invalid configuration: smtp.password in ${file} is plain text. Store it sealed under the master key with \`bulwark admin smtp-password\`, or give it in BULWARK_SMTP_PASSWORD`,
      { problems: [{ key: 'smtp.password', env: 'BULWARK_SMTP_PASSWORD', problem: 'plain-text secret at rest' }] },
      'config.invalid',
    );
  }
  const { dataDir: _ignored, ...fromEnv } = fromEnvironment(ConfigSchema, env);
  const merged = deepMerge(deepMerge(deepMerge(base, fromFile), fromEnv), overrides);
  merged.dataDir = resolve(dataDir);
  return validateConfig(merged);
}
