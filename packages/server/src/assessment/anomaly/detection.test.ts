/**
 * Anomaly detection end to end, over real MQTT with mutual TLS, on both engines: devices that
 * misbehave (a message flood, authentication failures against one device from many source
 * addresses, ACL denials) are flagged with evidence and quarantined by the product's policy within
 * the configured window (flush and tick of one second here), while well-behaved devices sending
 * telemetry in the same run are neither flagged nor quarantined (the false positives are printed
 * and must be 0). An operator's audited `activate` brings a device back. Then the takeover evidence:
 * one certificate used from two addresses, the two connections taking the session from each other,
 * raises `device-certificate-shared` and `mqtt-client-id-conflict`, which resolve once the window passes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { cliActor } from '../../accounts/roles.js';
import { useBrokerSuite } from '../../testing/broker-suite.js';
import type { TestDevice } from '../../testing/devices.js';
import { ENGINES } from '../../testing/engines.js';
import { closed, connectDevice, eventually, settle, UNLIMITED_DEVICE_RATES } from '../../testing/mqtt.js';
import { operatorSession, ownerSession } from '../../testing/server.js';
import type { FindingView } from '../model.js';
import { DEFAULT_RULES, type ProductRules } from './rules.js';

const WELL_BEHAVED = 6;
/** Flush and tick every second: a violation is acted on within a few seconds. */
const DETECTION_BOUND_MS = 8000;

const RULES: ProductRules = {
  thresholds: [
    { metric: 'messages', windowMinutes: 1, max: 150, severity: 'high', quarantine: true },
    { metric: 'authFailures', windowMinutes: 10, max: 5, severity: 'high', quarantine: true },
    { metric: 'aclDenials', windowMinutes: 10, max: 5, severity: 'medium', quarantine: true },
    { metric: 'addresses', windowMinutes: 60, max: 4, severity: 'medium', quarantine: false },
  ],
  baselines: [{ metric: 'messages', scope: 'device', z: 10, minimum: 100, severity: 'medium', quarantine: false }],
};

const telemetry = (deviceId: string) => `d/${deviceId}/telemetry`;

/** Connects over TLS to 127.0.0.1 from the loopback address `from`: another source address for the broker. */
function connectFrom(from: string, port: number, ca: string, options: mqtt.IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, {
      ca,
      localAddress: from,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    } as mqtt.IClientOptions);
    client.once('connect', () => resolve(client));
    client.once('error', (error) => {
      client.end(true);
      reject(error);
    });
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

for (const engine of ENGINES) {
  describe(`anomaly detection over MQTT with mutual TLS [${engine.engine}]`, { skip: engine.skip }, () => {
    const suite = useBrokerSuite(engine, { ...UNLIMITED_DEVICE_RATES }, 'ANOM', {
      anomaly: { flushSeconds: 1, evaluateSeconds: 1, minPeers: 3 },
      assessment: { intervalMinutes: 0 },
    });

    /** Provisioned by the first test, before the platform clock moves (the second one's device). */
    let sharedDevice: TestDevice;
    /** The owner's session, signed in by the first test (the one-time password works once). */
    let ownerToken: string;
    const status = async (deviceId: string) => (await suite.t.platform.devices.service.currentStatus(deviceId)) ?? 'deleted';
    async function findingsOf(deviceId: string): Promise<FindingView[]> {
      const { findings } = await suite.t.platform.assessment.service.list(cliActor(suite.org, 'test'), { limit: 200 });
      return findings.filter((f) => f.subject === deviceId);
    }

    it('flags and quarantines a flooding device, an authentication attack and ACL probing within the window; well-behaved devices are left alone', async () => {
      // Certificates are issued at the platform clock's time, which signing in moves ahead: devices first.
      const good: TestDevice[] = [];
      for (let i = 0; i < WELL_BEHAVED; i++) good.push(await suite.device());
      const [flood, victim, prober] = [await suite.device(), await suite.device(), await suite.device()];
      sharedDevice = await suite.device();
      const http = suite.t.client();
      const { token } = await ownerSession(suite.t, http);
      ownerToken = token;
      const set = await http.put(`/api/v1/assessment/anomaly/products/${suite.product}/rules`, RULES, { token });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.body.source, 'product');
      const connect = async (d: TestDevice) => {
        const client = await connectDevice(suite.port, suite.t.ca, d, d.id);
        suite.clients.push(client);
        return client;
      };
      const goodClients = await Promise.all(good.map(connect));
      let sending = true;
      const senders = goodClients.map(async (client, i) => {
        while (sending) {
          await client.publishAsync(telemetry(good[i]!.id), JSON.stringify({ t: 21 + i }), { qos: 1 }).catch(() => undefined);
          await settle(250);
        }
      });
      const floodClient = await connect(flood);
      const proberClient = await connect(prober);
      await settle(1500);

      const started = Date.now();
      // A flood: 400 messages as fast as the connection takes them.
      for (let i = 0; i < 400; i++) floodClient.publish(telemetry(flood.id), JSON.stringify({ n: i }), { qos: 0 });
      // Someone without the device's credentials tries its ID from eight addresses.
      for (let i = 2; i < 10; i++)
        await assert.rejects(
          connectFrom(`127.0.0.${i}`, suite.port, suite.t.ca, { clientId: victim.id, username: victim.id, password: 'guessed' }),
        );
      // A device probing other devices' topics.
      for (const other of good) await proberClient.subscribeAsync(`d/${other.id}/commands/#`, { qos: 1 }).catch(() => undefined);

      const quarantinedAt = new Map<string, number>();
      try {
        await eventually(
          async () => {
            for (const d of [flood, victim, prober])
              if (!quarantinedAt.has(d.id) && (await status(d.id)) === 'quarantined') quarantinedAt.set(d.id, Date.now() - started);
            return quarantinedAt.size === 3;
          },
          DETECTION_BOUND_MS,
          `the three misbehaving devices quarantined (so far: ${[...quarantinedAt.keys()].join(', ')})`,
        );
      } finally {
        sending = false;
        await Promise.all(senders);
      }
      console.log(
        `[${engine.engine}] quarantined after (ms): flood ${quarantinedAt.get(flood.id)}, auth attack ${quarantinedAt.get(victim.id)}, ACL probing ${quarantinedAt.get(prober.id)}`,
      );

      const [floodFinding] = (await findingsOf(flood.id)).filter((f) => f.check === 'anomaly-messages');
      assert.ok(floodFinding, 'a message-rate finding for the flooding device');
      assert.equal(floodFinding.source, 'anomaly');
      assert.equal(floodFinding.severity, 'high');
      assert.deepEqual(floodFinding.resources, [{ type: 'device', id: flood.id }]);
      assert.equal(floodFinding.evidence.metric, 'messages');
      assert.equal(floodFinding.evidence.threshold, 150);
      assert.ok((floodFinding.evidence.observed as number) > 150);
      assert.equal((floodFinding.evidence.window as { minutes: number }).minutes, 1);

      const authFinding = (await findingsOf(victim.id)).find((f) => f.check === 'anomaly-auth-failures');
      assert.ok(authFinding, 'an authentication-failure finding for the attacked device');
      assert.ok((authFinding.evidence.observed as number) > 5);
      const addressFinding = (await findingsOf(victim.id)).find((f) => f.check === 'anomaly-addresses');
      assert.ok(addressFinding, 'a distinct-addresses finding for the attacked device');
      assert.ok((addressFinding.evidence.observed as number) >= 8, JSON.stringify(addressFinding.evidence));

      const aclFinding = (await findingsOf(prober.id)).find((f) => f.check === 'anomaly-acl-denials');
      assert.ok(aclFinding, 'an ACL-denial finding for the probing device');
      assert.equal(aclFinding.evidence.observed, WELL_BEHAVED);

      // The quarantine is the detector's, audited as the system; the flooding device's session was dropped.
      const entries = (
        await suite.t.platform.db
          .selectFrom('audit_log')
          .select(['actor_type', 'actor_id', 'target_id', 'details'])
          .where('action', '=', 'device.status_changed')
          .where('target_id', 'in', [flood.id, victim.id, prober.id])
          .execute()
      ).filter((e) => JSON.parse(e.details).to === 'quarantined');
      assert.equal(entries.length, 3);
      for (const entry of entries) {
        assert.equal(entry.actor_type, 'system');
        assert.equal(entry.actor_id, 'anomaly-detector');
        assert.match(JSON.parse(entry.details).reason as string, /^anomaly finding /);
      }
      await eventually(() => !floodClient.connected, 5000, 'the quarantined flooding device disconnected');

      // No well-behaved device flagged or quarantined.
      let falsePositives = 0;
      for (const d of good) if ((await status(d.id)) !== 'active' || (await findingsOf(d.id)).length > 0) falsePositives++;
      console.log(`[${engine.engine}] false positives among ${WELL_BEHAVED} well-behaved devices: ${falsePositives}`);
      assert.equal(falsePositives, 0);

      // Only an operator brings a device back, and that is audited with who did it.
      const activated = await http.post(`/api/v1/devices/${flood.id}/activate`, undefined, { token });
      assert.equal(activated.status, 200, activated.text);
      assert.equal(await status(flood.id), 'active');
      const back = await suite.t.platform.db
        .selectFrom('audit_log')
        .select(['actor_type', 'details'])
        .where('action', '=', 'device.status_changed')
        .where('target_id', '=', flood.id)
        .orderBy('seq', 'desc')
        .executeTakeFirstOrThrow();
      assert.equal(back.actor_type, 'user');
      assert.equal(JSON.parse(back.details).to, 'active');

      // The behaviour is in storage per minute, and the fleet totals on the metrics.
      const minutes = await http.get(`/api/v1/assessment/anomaly/devices/${flood.id}/behaviour?minutes=10`, { token });
      assert.equal(minutes.status, 200, minutes.text);
      const messages = (minutes.body.minutes as { messages: number }[]).reduce((n, m) => n + m.messages, 0);
      assert.ok(messages >= 400, `${messages} messages stored for the flood`);
      const metrics = await suite.t.server.metrics.registry.getSingleMetricAsString('bulwark_device_behaviour_total');
      assert.match(metrics, /bulwark_device_behaviour_total\{event="auth_failures"\} (\d+)/);
      assert.doesNotMatch(metrics, /device_id/);
    });

    it('lets only org:manage change rules, refuses rules it cannot apply, and answers 404 for a product it does not hold', async () => {
      const http = suite.t.client();
      const admin = await operatorSession(suite.t, ownerToken, 'anomaly-admin@example.com', 'admin');
      const viewer = await operatorSession(suite.t, admin.token, 'anomaly-viewer@example.com', 'operator');
      const path = `/api/v1/assessment/anomaly/products/${suite.product}/rules`;
      const read = await http.get(path, { token: viewer.token });
      assert.equal(read.status, 200, read.text);
      assert.equal(read.body.source, 'product');
      const refused = await http.put(path, DEFAULT_RULES, { token: viewer.token });
      assert.equal(refused.status, 403, refused.text);
      const bad = await http.put(
        path,
        { thresholds: [], baselines: [{ metric: 'addresses', scope: 'device', z: 3, minimum: 1, severity: 'low', quarantine: false }] },
        { token: admin.token },
      );
      assert.equal(bad.status, 400, bad.text);
      await assert.rejects(
        suite.t.platform.assessment.anomaly.service.setRules(cliActor(suite.org, 'test'), suite.product, {
          thresholds: [{ metric: 'messages', windowMinutes: 61, max: 1, severity: 'low', quarantine: false }],
          baselines: [],
        }),
        (error: { code?: string }) => error.code === 'assessment.anomaly_rules_invalid',
      );
      const unknown = await http.get(`/api/v1/assessment/anomaly/products/${randomUUID()}/rules`, { token: viewer.token });
      assert.equal(unknown.status, 404, unknown.text);
      const reset = await http.delete(path, { token: admin.token });
      assert.equal(reset.status, 200, reset.text);
      assert.equal(reset.body.source, 'default');
      const audited = await suite.t.platform.db
        .selectFrom('audit_log')
        .select('action')
        .where('target_id', '=', suite.product)
        .where('action', 'like', 'assessment.anomaly_rules_%')
        .execute();
      assert.deepEqual(
        audited.map((a) => a.action),
        ['assessment.anomaly_rules_set', 'assessment.anomaly_rules_reset'],
      );
    });

    it('records one certificate used from two addresses taking the session from each other, finds it, and resolves it after the window', async () => {
      const device = sharedDevice;
      const creds = { key: device.key, cert: device.cert, clientId: device.id };
      const sides = ['127.0.0.1', '127.0.0.2', '127.0.0.1', '127.0.0.2'];
      let previous: MqttClient | null = null;
      for (const from of sides) {
        const client = await connectFrom(from, suite.port, suite.t.ca, creds);
        if (previous) await closed(previous);
        previous = client;
      }
      previous!.end(true);
      await suite.t.platform.assessment.anomaly.recorder.flush();
      const actor = cliActor(suite.org, 'test');
      await suite.t.platform.assessment.service.run(actor, 'cli');
      const { findings } = await suite.t.platform.assessment.service.list(actor, { limit: 200 });
      const shared = findings.find((f) => f.check === 'device-certificate-shared' && f.subject === device.certSerial);
      assert.ok(shared, 'a shared-certificate finding');
      assert.equal(shared.state, 'open');
      assert.equal(shared.evidence.takeovers, 3);
      assert.equal(shared.evidence.distinctAddresses, 2);
      assert.deepEqual([...(shared.evidence.addresses as string[])].sort(), ['127.0.0.1', '127.0.0.2']);
      assert.deepEqual(shared.resources, [
        { type: 'certificate', id: device.certSerial },
        { type: 'device', id: device.id },
      ]);
      const conflict = findings.find((f) => f.check === 'mqtt-client-id-conflict' && f.subject === device.id);
      assert.ok(conflict, 'a client-ID conflict finding');
      assert.equal(conflict.evidence.takeovers, 3);

      suite.t.clock.advance((suite.t.config.anomaly.conflictWindowHours + 1) * 3_600_000);
      await suite.t.platform.assessment.service.run(actor, 'cli');
      const after = (await suite.t.platform.assessment.service.list(actor, { limit: 200 })).findings;
      assert.equal(after.find((f) => f.id === shared.id)?.state, 'resolved');
      assert.equal(after.find((f) => f.id === conflict.id)?.state, 'resolved');
    });
  });
}
