/**
 * Checks on how devices connect, from the session takeovers the broker records (a connection
 * that replaced a live session of the same device, assessment/anomaly/recorder.ts): a device
 * certificate used by two parties at once, and MQTT clients fighting over one client ID. One
 * takeover alone is ordinary (a device reconnecting before the broker saw its old connection
 * die); a pair of parties kicking each other out is not.
 */
import type { DeviceConnectionConflictsTable } from '../../storage/schema.js';
import type { Check, CheckContext, Observation } from './check.js';

const HOUR_MS = 3_600_000;
/** Takeovers read per run at most (the newest). */
const MAX_CONFLICTS = 5000;
/** Takeovers of one device within the window that make a client-ID conflict. */
export const CONFLICT_TAKEOVERS = 3;
const MAX_ADDRESSES_SHOWN = 10;

function conflictsOf(ctx: CheckContext): Promise<DeviceConnectionConflictsTable[]> {
  const since = ctx.now - ctx.config.anomaly.conflictWindowHours * HOUR_MS;
  return ctx.once(`connection-conflicts:${ctx.organizationId}`, () =>
    ctx.evidence.connectionConflicts(ctx.organizationId, since, MAX_CONFLICTS),
  );
}

function groupBy<K>(rows: DeviceConnectionConflictsTable[], key: (r: DeviceConnectionConflictsTable) => K | null) {
  const groups = new Map<K, DeviceConnectionConflictsTable[]>();
  for (const row of rows) {
    const k = key(row);
    if (k === null) continue;
    const list = groups.get(k);
    if (list) list.push(row);
    else groups.set(k, [row]);
  }
  return groups;
}

function summary(rows: DeviceConnectionConflictsTable[], windowHours: number) {
  const addresses = [...new Set(rows.flatMap((r) => [r.previous_address, r.address]))];
  const times = rows.map((r) => Number(r.at));
  return {
    windowHours,
    takeovers: rows.length,
    addresses: addresses.slice(0, MAX_ADDRESSES_SHOWN),
    distinctAddresses: addresses.length,
    first: new Date(Math.min(...times)).toISOString(),
    last: new Date(Math.max(...times)).toISOString(),
    shortestSessionMs: Math.min(...rows.map((r) => Number(r.previous_age_ms))),
  };
}

export const deviceCertificateShared: Check = {
  id: 'device-certificate-shared',
  rationale:
    'A device certificate presented by two connections from different addresses that take the session from each other is a copied key: one of them is not the device.',
  severity: 'high',
  title: 'A device certificate is in use by two parties',
  async evaluate(ctx) {
    const conflicts = await conflictsOf(ctx);
    const sameCertificate = groupBy(conflicts, (r) =>
      r.credential.startsWith('certificate:') && r.credential === r.previous_credential ? r.credential.slice('certificate:'.length) : null,
    );
    const found: Observation[] = [];
    for (const [serial, rows] of sameCertificate) {
      const evidence = summary(rows, ctx.config.anomaly.conflictWindowHours);
      if (rows.length < 2 || evidence.distinctAddresses < 2) continue;
      found.push({
        subject: serial,
        evidence: { certificateSerial: serial, deviceId: rows[0]!.device_id, ...evidence },
        resources: [
          { type: 'certificate', id: serial },
          { type: 'device', id: rows[0]!.device_id },
        ],
      });
    }
    return found;
  },
};

export const mqttClientIdConflict: Check = {
  id: 'mqtt-client-id-conflict',
  rationale:
    'Two MQTT clients connecting with one client ID take the session from each other in a loop: messages are lost, and one of them may be an impostor or a cloned device.',
  severity: 'medium',
  title: 'MQTT clients conflict over a client ID',
  async evaluate(ctx) {
    const conflicts = await conflictsOf(ctx);
    const found: Observation[] = [];
    for (const [deviceId, rows] of groupBy(conflicts, (r) => r.device_id)) {
      const credentials = [...new Set(rows.flatMap((r) => [r.previous_credential, r.credential]))];
      if (rows.length < CONFLICT_TAKEOVERS && credentials.length < 2) continue;
      found.push({
        subject: deviceId,
        evidence: { clientId: deviceId, credentials, ...summary(rows, ctx.config.anomaly.conflictWindowHours) },
        resources: [{ type: 'device', id: deviceId }],
      });
    }
    return found;
  },
};
