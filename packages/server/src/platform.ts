/**
 * The composition root: opens storage (applying migrations), loads the master key and the
 * PKCS#11 token, and wires every domain service with what it needs through its constructor.
 * Built on top of it: the HTTP routes (routes.ts), the runner that serves HTTPS and MQTT
 * (runner/server.ts), and the CLI. No domain imports this file (docs/architecture.md).
 */
import type { Kysely } from 'kysely';
import { ApiKeyStore } from './accounts/api-key-store.js';
import { ApiKeyAuthenticator, ApiKeyService } from './accounts/api-keys.js';
import { Authenticator } from './accounts/authenticate.js';
import { InvitationService } from './accounts/invitations.js';
import { LoginService } from './accounts/login.js';
import { createMailer, type Mailer } from './accounts/mailer.js';
import { MfaService } from './accounts/mfa.js';
import { OneTimeTokens } from './accounts/one-time-tokens.js';
import { OneTimeTokenStore } from './accounts/one-time-token-store.js';
import { PasskeyStore } from './accounts/passkey-store.js';
import { PasskeyService } from './accounts/passkeys.js';
import { ProfileService } from './accounts/profile.js';
import { PasswordRecoveryService } from './accounts/recovery.js';
import { AccountsService } from './accounts/service.js';
import { SessionService } from './accounts/sessions.js';
import { SignupService } from './accounts/signup.js';
import { RelyingParty } from './accounts/oidc.js';
import { SecurityReportService } from './accounts/security-report.js';
import { SsoService } from './accounts/sso.js';
import { SsoConfigService } from './accounts/sso-config.js';
import { SsoStore } from './accounts/sso-store.js';
import { AccountsStore } from './accounts/store.js';
import { AccessTokens } from './apps/access-tokens.js';
import { AppAuthorizationService } from './apps/authorization.js';
import { AppTokenAuthenticator } from './apps/authenticator.js';
import { AppClientService } from './apps/clients.js';
import { AppGrantService } from './apps/grants.js';
import { AppSigningKeys } from './apps/signing-keys.js';
import { AppStore } from './apps/store.js';
import { CaRevocationService } from './pki/ca-revocations.js';
import { CaRevocationStore } from './pki/ca-revocation-store.js';
import { AdvisoryService } from './assessment/advisories/service.js';
import { AdvisoryStore } from './assessment/advisories/store.js';
import { FleetStore } from './assessment/advisories/fleet-store.js';
import { EvidenceStore } from './assessment/evidence-store.js';
import { MitigationService } from './assessment/mitigations.js';
import { FindingNotifier } from './assessment/notify.js';
import { AssessmentService } from './assessment/service.js';
import { AssessmentStore } from './assessment/store.js';
import { DisclosureService } from './assessment/disclosure.js';
import { DisclosureStore } from './assessment/disclosure-store.js';
import { ComplianceService } from './assessment/compliance/report.js';
import { ComplianceEvidenceStore } from './assessment/compliance/evidence-store.js';
import { newId } from './tokens.js';
import { AnomalyDetector } from './assessment/anomaly/detector.js';
import { BehaviourRecorder } from './assessment/anomaly/recorder.js';
import { AnomalyService } from './assessment/anomaly/service.js';
import { BehaviourStore } from './assessment/anomaly/store.js';
import { AuditService } from './audit/service.js';
import { AuditStore } from './audit/store.js';
import { ClaimService } from './binding/claims.js';
import { ConsumerDeviceService } from './binding/consumer-devices.js';
import { LiveHub } from './binding/live.js';
import { PrivacyService } from './binding/privacy.js';
import { PrivacyStore } from './binding/privacy-store.js';
import { BindingService } from './binding/service.js';
import { BindingStore } from './binding/store.js';
import { BootstrapCaService } from './devices/bootstrap-cas.js';
import { CommandService } from './devices/commands.js';
import { CommandStore } from './devices/command-store.js';
import { EnrollmentService } from './devices/enrollment.js';
import { EnrollmentPolicyService } from './devices/enrollment-policy.js';
import { JitProvisioner } from './devices/jit.js';
import { ManufacturerCaService } from './devices/manufacturer-cas.js';
import { ManufacturerStore } from './devices/manufacturer-store.js';
import { DeviceCertificateVerifier } from './devices/identity.js';
import { GatewayFeed } from './devices/gateway-feed.js';
import { GatewayStore } from './devices/gateway-store.js';
import { GatewaysService } from './devices/gateways.js';
import { DeviceLink } from './devices/messaging.js';
import { DevicesService } from './devices/service.js';
import { ShadowService } from './devices/shadow.js';
import { ShadowStore } from './devices/shadow-store.js';
import { BootstrapCaStore } from './devices/bootstrap-ca-store.js';
import { DevicesStore } from './devices/store.js';
import { SymmetricKeyService } from './devices/symmetric-keys.js';
import { SymmetricKeyStore } from './devices/symmetric-key-store.js';
import { systemClock, type Clock } from './clock.js';
import { loadMasterKey, type SecretBox } from './keys/master-key.js';
import { pkcs11Options, TokenAccess } from './keys/pkcs11.js';
import { SigningKeys } from './keys/signing-keys.js';
import { configuredPublicUrl, type Config } from './ops/config.js';
import { loadDeviceIssuingCa } from './pki/ca.js';
import { PkiService } from './pki/service.js';
import { PkiStore } from './pki/store.js';
import { openDatabase, type DatabaseHandle } from './storage/database.js';
import { TelemetryStore } from './telemetry/store.js';
import { RetentionJob } from './telemetry/retention.js';
import { TelemetryService } from './telemetry/service.js';
import { TelemetryQuota } from './telemetry/quota.js';
import { CollectionFilter } from './telemetry/collection.js';
import { migrateToLatest } from './storage/migrate.js';
import { openUpdates, type UpdatesDomain } from './updates/index.js';
import type { RolloutService } from './updates/rollouts.js';
import type { Database } from './storage/schema.js';

export interface PlatformOptions {
  clock?: Clock;
  mailer?: Mailer;
  env?: NodeJS.ProcessEnv;
  /** An already-open database (tests, or a second node sharing one). */
  database?: DatabaseHandle;
  /** PostgreSQL schema (tests give each file its own). */
  schema?: string;
  /** Apply pending migrations on open (the default, as `bulwark serve` does). */
  migrate?: boolean;
  /** Tests only: let single sign-on talk to an identity provider on http://127.0.0.1 (never from the config file). */
  insecureLoopbackIdentityProviders?: boolean;
}

export interface Platform {
  config: Config;
  clock: Clock;
  db: Kysely<Database>;
  database: DatabaseHandle;
  box: SecretBox;
  /** The configured PKCS#11 token (keys.pkcs11), opened on first use; null without one. */
  hsm: TokenAccess | null;
  mailer: Mailer;
  audit: AuditService;
  signingKeys: SigningKeys;
  devices: {
    store: DevicesStore;
    service: DevicesService;
    enrollment: EnrollmentService;
    link: DeviceLink;
    shadow: ShadowService;
    commands: CommandService;
    symmetricKeys: SymmetricKeyService;
    identity: DeviceCertificateVerifier;
    bootstrapCas: BootstrapCaService;
    /** Just-in-time provisioning (issue 18): manufacturer CAs, the allow-lists per product or enrollment group, the device path. */
    manufacturerCas: ManufacturerCaService;
    enrollmentPolicies: EnrollmentPolicyService;
    jit: JitProvisioner;
    /** Gateways and their children; the feed tells the broker of this node when a child is cut from its gateway. */
    gateways: GatewaysService;
    gatewayFeed: GatewayFeed;
  };
  pki: PkiService;
  /** CA certificates recorded as revoked (the audit checks read them). */
  caRevocations: CaRevocationService;
  telemetry: {
    store: TelemetryStore;
    service: TelemetryService;
    retention: RetentionJob;
    quota: TelemetryQuota;
    collection: CollectionFilter;
  };
  updates: UpdatesDomain;
  binding: {
    store: BindingStore;
    claims: ClaimService;
    service: BindingService;
    consumerDevices: ConsumerDeviceService;
    live: LiveHub;
    privacy: PrivacyService;
  };
  accounts: {
    store: AccountsStore;
    sessions: SessionService;
    mfa: MfaService;
    passkeys: PasskeyService;
    tokens: OneTimeTokens;
    login: LoginService;
    service: AccountsService;
    authenticator: Authenticator;
    apiKeys: ApiKeyService;
    profile: ProfileService;
    recovery: PasswordRecoveryService;
    signup: SignupService;
    invitations: InvitationService;
    sso: SsoService;
    ssoConfig: SsoConfigService;
    securityReport: SecurityReportService;
  };
  /** Companion-app authorization (OAuth 2.1): clients, the authorization server, access tokens and their signing keys. */
  /** Security assessment: the audit checks and their findings, mitigations, notifications. */
  assessment: {
    service: AssessmentService;
    mitigations: MitigationService;
    notifier: FindingNotifier;
    disclosures: DisclosureService;
    compliance: ComplianceService;
    advisories: AdvisoryService;
    /** Anomaly detection: behaviour counted by the broker (recorder), scored on a timer (detector), rules and views (service). */
    anomaly: { service: AnomalyService; recorder: BehaviourRecorder; detector: AnomalyDetector };
  };
  apps: {
    store: AppStore;
    clients: AppClientService;
    authorization: AppAuthorizationService;
    grants: AppGrantService;
    tokens: AccessTokens;
    keys: AppSigningKeys;
  };
  close(): Promise<void>;
}

export async function openPlatform(config: Config, options: PlatformOptions = {}): Promise<Platform> {
  const clock = options.clock ?? systemClock;
  const pkcs11 = config.keys?.pkcs11;
  const hsm = pkcs11 ? new TokenAccess(() => pkcs11Options(pkcs11, options.env ?? process.env)) : null;
  let box: SecretBox;
  try {
    // A master key on the token (`init --hsm-master-key`) is reached through the same token access.
    box = loadMasterKey(config.dataDir, options.env, hsm ? () => hsm.get() : null);
  } catch (error) {
    hsm?.close();
    throw error;
  }
  const database =
    options.database ??
    openDatabase({
      url: config.database.url,
      dataDir: config.dataDir,
      poolSize: config.database.poolSize,
      ...(options.schema ? { schema: options.schema } : {}),
    });
  if (options.migrate !== false) await migrateToLatest(database);
  const db = database.db;
  const mailer = options.mailer ?? createMailer(config, box);
  // keys.pkcs11.onlineSigningKeys: new online keys (audit checkpoints, TUF snapshot, timestamp, director) are generated on the token.
  const signingKeys = new SigningKeys(db, box, clock, hsm && pkcs11?.onlineSigningKeys ? () => hsm.get() : null);
  const audit = new AuditService(new AuditStore(db, database.engine), signingKeys, clock);

  const store = new AccountsStore(db);
  const sessions = new SessionService(store, clock, config.sessions, box.deriveKey('csrf'));
  const mfa = new MfaService(store, box, audit, clock);
  const passkeys = new PasskeyService(new PasskeyStore(db), store, audit, clock, config.passkeys, box.deriveKey('webauthn-user-handle'));
  const login = new LoginService(store, sessions, mfa, passkeys, audit, mailer, clock, config.auth);
  const tokens = new OneTimeTokens(new OneTimeTokenStore(db), clock);
  const apiKeyStore = new ApiKeyStore(db);
  const service = new AccountsService(store, sessions, mfa, tokens, apiKeyStore, audit, clock, passkeys);
  const authenticator = new Authenticator(store, sessions);
  const apiKeys = new ApiKeyService(apiKeyStore, service, audit, clock);
  const apiKeyAuthenticator = new ApiKeyAuthenticator(apiKeyStore, store, clock);
  authenticator.register(apiKeyAuthenticator);
  const profile = new ProfileService(store, service, tokens, mfa, apiKeys, audit, mailer, clock, config, passkeys);
  const recovery = new PasswordRecoveryService(store, sessions, apiKeyStore, tokens, audit, mailer, clock, config.auth);
  const signup = new SignupService(store, tokens, audit, mailer, clock, config.auth);
  const invitations = new InvitationService(store, tokens, audit, mailer, clock, config.auth);
  const ssoStore = new SsoStore(db);
  const ssoConfig = new SsoConfigService(ssoStore, store, service, audit, box, clock, appIssuer(config));
  const sso = new SsoService(
    ssoStore,
    store,
    service,
    sessions,
    audit,
    ssoConfig,
    clock,
    new RelyingParty(clock, options.insecureLoopbackIdentityProviders === true),
  );
  const securityReport = new SecurityReportService(ssoStore, store, passkeys);
  // SSO only: passwords refused for the organization's operators but its break-glass owner; SSO sessions bounded.
  login.usePasswordGate((org, user) => sso.passwordGate(org, user));
  sessions.boundSessions((user, trx) => sso.sessionBound(user, trx));
  apiKeyAuthenticator.useUserGate((user) => sso.apiKeyAllowed(user));
  const apps = appsOf(config, db, box, audit, clock, store);
  authenticator.register(new AppTokenAuthenticator(apps.tokens, apps.store, store, audit, clock));
  // Sign-out, sign-out everywhere and password changes end the user's app grants in the same transaction.
  sessions.onSignOut((userId, reason, trx) => apps.clients.endGrantsOfUser(userId, reason, trx));
  const devicesStore = new DevicesStore(db);
  const gatewayFeed = new GatewayFeed();
  const devicesService = new DevicesService(devicesStore, audit, clock, gatewayFeed, (actor) => service.requireStepUp(actor));
  const pki = new PkiService(
    new PkiStore(db),
    audit,
    clock,
    () => loadDeviceIssuingCa(config.dataDir, { box, token: hsm ? () => hsm.get() : null }),
    {
      crlUrl: `${config.http.publicUrl ?? `https://localhost:${config.http.port}`}/pki/crl.pem`,
    },
  );
  const identity = new DeviceCertificateVerifier(devicesStore, clock, () => pki.deviceCaCertificate());
  const bootstrapCas = new BootstrapCaService(new BootstrapCaStore(db), devicesStore, audit, clock);
  const manufacturerStore = new ManufacturerStore(db);
  const enrollmentPolicies = new EnrollmentPolicyService(manufacturerStore, devicesStore, audit, clock);
  const jit = new JitProvisioner(manufacturerStore, enrollmentPolicies, devicesStore, audit, clock, {
    concurrency: config.mqtt.jitConcurrency,
    perSecond: config.mqtt.jitRegistrationsPerSecond,
  });
  const link = new DeviceLink();
  const telemetryStore = new TelemetryStore(db, database.engine, database.copyIn);
  const devices = {
    store: devicesStore,
    service: devicesService,
    link,
    shadow: new ShadowService(new ShadowStore(db), devicesStore, audit, clock, link),
    commands: new CommandService(new CommandStore(db), telemetryStore, devicesStore, audit, clock, link),
    enrollment: new EnrollmentService(devicesStore, devicesService, pki, tokens, audit, clock, identity, bootstrapCas, jit, (actor) =>
      service.requireStepUp(actor),
    ),
    identity,
    bootstrapCas,
    manufacturerCas: new ManufacturerCaService(
      manufacturerStore,
      devicesStore,
      tokens,
      audit,
      clock,
      (actor) => service.requireStepUp(actor),
      (issuer) => jit.issuerRegistered(issuer),
    ),
    enrollmentPolicies,
    jit,
    gatewayFeed,
    gateways: new GatewaysService(devicesStore, new GatewayStore(db), audit, clock, gatewayFeed, {
      maxChildrenPerGateway: config.mqtt.maxChildrenPerGateway,
      registrationsPerMinute: config.mqtt.gatewayRegistrationsPerMinute,
    }),
    symmetricKeys: new SymmetricKeyService(
      new SymmetricKeyStore(db),
      devicesStore,
      box,
      audit,
      clock,
      (actor) => service.requireStepUp(actor),
      { maxTokenLifetimeSeconds: config.auth.deviceTokenMaxLifetimeSeconds },
      enrollmentPolicies,
    ),
  };
  const telemetry = telemetryOf(telemetryStore, devicesService, clock, config);
  const binding = bindingOf(
    db,
    config,
    { devices: devicesService, accounts: service, audit, clock, link, profile, pki },
    devices,
    telemetry,
  );
  // A consumer's sign-out (logout, password change, sessions revoked) ends their live streams on every node.
  sessions.onSignOut(async (userId) => binding.live.userSignedOut(userId));
  const updates = openUpdates({
    config,
    db,
    signingKeys,
    audit,
    clock,
    devices: devicesService,
    link,
    requireStepUp: (actor) => service.requireStepUp(actor),
    lockOrganization: (organizationId, trx) => store.lockOrganization(organizationId, trx),
  });
  const assessment = assessmentOf(db, config, {
    audit,
    clock,
    box,
    mailer,
    pki,
    devices: devicesService,
    enrollment: devices.enrollment,
    rollouts: updates.rollouts,
  });

  return {
    config,
    clock,
    db,
    database,
    box,
    hsm,
    mailer,
    audit,
    signingKeys,
    devices,
    pki,
    caRevocations: new CaRevocationService(new CaRevocationStore(db), audit, clock),
    telemetry,
    updates,
    binding,
    accounts: {
      store,
      sessions,
      mfa,
      passkeys,
      tokens,
      login,
      service,
      authenticator,
      apiKeys,
      profile,
      recovery,
      signup,
      invitations,
      sso,
      ssoConfig,
      securityReport,
    },
    apps,
    assessment,
    // A database handed in belongs to the caller, who closes it.
    close: async () => {
      try {
        // A move of the telemetry log under way commits (or fails) before the connection it uses closes.
        await telemetryStore.stopMovingLog();
        // What this process wrote to the audit log is signed before it lets go (CLI commands, init).
        await audit.checkpointOwnEntries();
      } finally {
        hsm?.close();
        if (!options.database) await database.close();
      }
    },
  };
}

/** The issuer of access tokens: the deployment's public URL (a deployment serving apps sets http.publicUrl). */
export function appIssuer(config: Config): string {
  return config.http.publicUrl ?? `https://localhost:${config.http.port}`;
}

function appsOf(
  config: Config,
  db: Kysely<Database>,
  box: SecretBox,
  audit: AuditService,
  clock: Clock,
  accounts: AccountsStore,
): Platform['apps'] {
  const store = new AppStore(db);
  const keys = new AppSigningKeys(store, box, audit, clock, config.apps);
  const issuer = appIssuer(config);
  const tokens = new AccessTokens(keys, clock, {
    issuer,
    audience: config.apps.audience ?? `${issuer}/api`,
    lifetimeSeconds: config.apps.accessTokenMinutes * 60,
  });
  return {
    store,
    keys,
    tokens,
    clients: new AppClientService(store, audit, clock),
    authorization: new AppAuthorizationService(store, audit, clock, config.apps, accounts),
    grants: new AppGrantService(store, tokens, accounts, audit, clock, config.apps),
  };
}

function bindingOf(
  db: Kysely<Database>,
  config: Config,
  deps: {
    devices: DevicesService;
    accounts: AccountsService;
    audit: AuditService;
    clock: Clock;
    link: DeviceLink;
    profile: ProfileService;
    pki: PkiService;
  },
  devices: Platform['devices'],
  telemetry: Platform['telemetry'],
): Platform['binding'] {
  const store = new BindingStore(db);
  const limits = config.binding;
  const live = new LiveHub(store, deps.clock, telemetry.collection, {
    maxStreamsPerConsumer: limits.maxLiveStreamsPerConsumer,
    maxStreamSeconds: limits.liveStreamMaxSeconds,
  });
  // What a product declares and its owners consent to decides which telemetry values are stored at all.
  const privacy = new PrivacyService(new PrivacyStore(db), store, deps.devices, deps.audit, deps.clock, telemetry.collection);
  telemetry.collection.use(privacy);
  deps.profile.onAccountDeletion(async (user, trx) => {
    await privacy.forgetUser(user.id, trx);
    return async () => undefined;
  });
  const service = new BindingService(store, deps.devices, deps.accounts, deps.audit, deps.clock, deps.link, live, limits);
  const consumerDevices = new ConsumerDeviceService(
    store,
    deps.audit,
    devices.shadow,
    devices.commands,
    telemetry.service,
    live,
    limits.consumerCommands,
  );
  // Deleting a consumer's account erases the telemetry their devices sent while theirs (read before the unbind below).
  deps.profile.onAccountDeletion((user, trx) => consumerDevices.eraseTelemetryOf(user, trx));
  // Deleting a consumer's account unbinds the devices they own and ends their shares (in the deletion's transaction).
  deps.profile.onAccountDeletion((user, trx) => service.releaseAllOf(user, trx));
  // A consumer's data export names the devices bound to them, their role and since when, and invitations.
  deps.profile.onAccountExport(async (user) => ['devices', await service.exportOf(user)]);
  deps.profile.onAccountExport(async (user) => ['telemetry', await consumerDevices.exportTelemetry(user)]);
  return {
    store,
    claims: new ClaimService(store, deps.devices, deps.pki, deps.audit, deps.clock, limits, configuredPublicUrl(config.http)),
    service,
    consumerDevices,
    live,
    privacy,
  };
}

function assessmentOf(
  db: Kysely<Database>,
  config: Config,
  deps: {
    audit: AuditService;
    clock: Clock;
    box: SecretBox;
    mailer: Mailer;
    pki: PkiService;
    devices: DevicesService;
    enrollment: EnrollmentService;
    rollouts: RolloutService;
  },
): Platform['assessment'] {
  const store = new AssessmentStore(db);
  const evidence = new EvidenceStore(db);
  const advisories = new AdvisoryService(
    new AdvisoryStore(db),
    new FleetStore(db),
    deps.rollouts,
    deps.audit,
    deps.clock,
    config.assessment,
  );
  const service = new AssessmentService(store, evidence, deps.audit, deps.clock, config, {
    caChain: () => deps.pki.caChain(),
    vulnerabilities: (organizationId, now, limit) => advisories.assess(organizationId, now, limit),
  });
  const notifier = new FindingNotifier(store, evidence, deps.box, deps.mailer, deps.audit, deps.clock, config.assessment);
  const behaviour = new BehaviourStore(db);
  return {
    service,
    notifier,
    mitigations: new MitigationService(service, deps.devices, deps.enrollment, deps.pki, notifier, deps.audit),
    disclosures: new DisclosureService(new DisclosureStore(db), deps.mailer, deps.audit, deps.clock, config),
    compliance: new ComplianceService(new ComplianceEvidenceStore(db), store, deps.audit, deps.clock, config),
    advisories,
    anomaly: {
      service: new AnomalyService(behaviour, deps.devices, deps.audit, deps.clock, config.anomaly.retentionDays),
      recorder: new BehaviourRecorder(behaviour, () => deps.clock.now(), config.anomaly.maxTrackedDevices, newId),
      detector: new AnomalyDetector(behaviour, store, deps.devices, deps.audit, deps.clock, config.anomaly),
    },
  };
}

function telemetryOf(store: TelemetryStore, devices: DevicesService, clock: Clock, config: Config): Platform['telemetry'] {
  return {
    store,
    service: new TelemetryService(store, devices, clock),
    retention: new RetentionJob(store, devices, clock, {
      defaultDays: config.telemetry.retentionDays,
      batchRows: config.telemetry.pruneBatchRows,
    }),
    quota: new TelemetryQuota(store, devices, clock, {
      dailyReadings: config.telemetry.dailyReadingsPerDevice,
      dailyBytes: config.telemetry.dailyBytesPerDevice,
    }),
    collection: new CollectionFilter(clock),
  };
}
