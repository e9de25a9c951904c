/**
 * The HTTP side of the composition root: installs the accounts domain's authentication hook and
 * registers every domain's route plugins on the app transport/http builds, handing each plugin
 * exactly the services it calls. transport/http knows no domain; the domains know transport/http
 * only through their own routes folder or file.
 */
import type { FastifyInstance } from 'fastify';
import { installAuthentication } from './accounts/routes/authentication.js';
import { accountsRoutes } from './accounts/routes/index.js';
import { appClientRoutes, oauthRoutes } from './apps/routes/index.js';
import { advisoryRoutes, anomalyRoutes, assessmentRoutes, complianceRoutes, disclosureRoutes } from './assessment/routes/index.js';
import { auditRoutes } from './audit/routes.js';
import { liveRoutes, myDeviceRoutes, operatorBindingRoutes, privacyRoutes } from './binding/routes/index.js';
import { deviceRoutes, enrollmentRoutes, gatewayRoutes, stateRoutes, symmetricKeyRoutes } from './devices/routes/index.js';
import type { Metrics } from './ops/metrics.js';
import type { Readiness } from './ops/readiness.js';
import { opsRoutes } from './ops/routes.js';
import { pkiRoutes } from './pki/routes.js';
import type { Platform } from './platform.js';
import { isReachable } from './storage/database.js';
import { telemetryRoutes } from './telemetry/routes.js';
import { consoleRoutes, servesCompanionApp } from './transport/http/console.js';
import type { FailureLimiterFactory } from './transport/http/failure-limiter.js';
import { blobRoutes, releaseRoutes, repositoryRoutes, rolloutRoutes } from './updates/routes/index.js';

/**
 * The registration callback `buildHttpApp` runs once its plumbing (headers, errors, rate limit, OpenAPI) is in place.
 * `failureLimiters` counts the device doors' failed authentications (in Redis across the deployment when it has one).
 */
export function httpRoutes(
  platform: Platform,
  metrics: Metrics,
  readiness: Readiness,
  failureLimiters: FailureLimiterFactory,
): (app: FastifyInstance) => Promise<void> {
  const { config, db, audit, clock, pki, devices, telemetry, updates, accounts, apps, binding, assessment } = platform;
  const loginRateLimitPerMinute = config.auth.loginRateLimitPerMinute;
  return async (app) => {
    installAuthentication(app, accounts.authenticator, accounts.sessions);
    readiness.add('database', () => isReachable(db));
    await app.register(opsRoutes({ readiness, metrics, metricsTokenHash: config.metrics.tokenHash }));
    await app.register(pkiRoutes({ pki }));
    await app.register(
      accountsRoutes({
        ...accounts,
        clock,
        publicUrl: config.http.publicUrl,
        passkeyConfig: config.passkeys,
        loginRateLimitPerMinute,
      }),
      {
        prefix: '/api/v1',
      },
    );
    await app.register(auditRoutes({ audit }), { prefix: '/api/v1' });
    await app.register(
      assessmentRoutes({ assessment: assessment.service, mitigations: assessment.mitigations, notifier: assessment.notifier }),
      { prefix: '/api/v1' },
    );
    await app.register(complianceRoutes({ compliance: assessment.compliance }), { prefix: '/api/v1' });
    await app.register(advisoryRoutes({ advisories: assessment.advisories }), { prefix: '/api/v1' });
    await app.register(anomalyRoutes({ anomaly: assessment.anomaly.service }), { prefix: '/api/v1' });
    await app.register(
      disclosureRoutes({
        disclosures: assessment.disclosures,
        reportsPerHour: config.disclosure.reportsPerHour,
        bodyLimitBytes: config.http.bodyLimitBytes,
      }),
    );
    await app.register(
      oauthRoutes({
        authorization: apps.authorization,
        grants: apps.grants,
        keys: apps.keys,
        issuer: apps.tokens.config.issuer,
        authorizeRateLimitPerMinute: config.apps.authorizeRateLimitPerMinute,
        tokenRateLimitPerMinute: config.apps.tokenRateLimitPerMinute,
        hostedPages: servesCompanionApp(config.http.consoleDir),
      }),
    );
    await app.register(appClientRoutes({ clients: apps.clients, keys: apps.keys }), { prefix: '/api/v1' });
    await app.register(deviceRoutes({ devices: devices.service, bodyLimitBytes: config.http.bodyLimitBytes }), { prefix: '/api/v1' });
    await app.register(
      enrollmentRoutes({
        enrollment: devices.enrollment,
        bootstrapCas: devices.bootstrapCas,
        manufacturerCas: devices.manufacturerCas,
        enrollmentPolicies: devices.enrollmentPolicies,
        pki,
      }),
    );
    await app.register(symmetricKeyRoutes({ symmetricKeys: devices.symmetricKeys, loginRateLimitPerMinute, failureLimiters }));
    await app.register(telemetryRoutes({ telemetry: telemetry.service, quota: telemetry.quota }), { prefix: '/api/v1' });
    await app.register(stateRoutes({ shadow: devices.shadow, commands: devices.commands }), { prefix: '/api/v1' });
    await app.register(gatewayRoutes({ gateways: devices.gateways }), { prefix: '/api/v1' });
    await app.register(operatorBindingRoutes({ claims: binding.claims, binding: binding.service, publicUrl: config.http.publicUrl }), {
      prefix: '/api/v1',
    });
    await app.register(myDeviceRoutes({ claims: binding.claims, binding: binding.service, consumerDevices: binding.consumerDevices }), {
      prefix: '/api/v1',
    });
    await app.register(liveRoutes({ consumerDevices: binding.consumerDevices }), { prefix: '/api/v1' });
    await app.register(privacyRoutes({ privacy: binding.privacy }), { prefix: '/api/v1' });
    // Each updates plugin holds operator routes (/api/v1/updates/…), device routes (/device/v1/updates/…)
    // and, for the repository and releases, the public TUF paths (/tuf/<organization>/…): no prefix here.
    await app.register(repositoryRoutes({ repository: updates.repository, onlineKeys: updates.onlineKeys }));
    await app.register(releaseRoutes({ releases: updates.releases }));
    await app.register(
      blobRoutes({
        blobs: updates.blobs,
        uploads: updates.uploads,
        releases: updates.releases,
        maxImageBytes: config.updates.maxImageBytes,
      }),
    );
    await app.register(
      rolloutRoutes({
        rollouts: updates.rollouts,
        repository: updates.repository,
        identity: devices.identity,
        loginRateLimitPerMinute,
        failureLimiters,
      }),
    );
    await app.register(consoleRoutes({ dir: config.http.consoleDir }));
  };
}
