/**
 * MQTT helpers for tests: a device's real mutual-TLS connection (mqtt.js, MQTT 3.1.1, no
 * automatic reconnect), the Debian mosquitto clients run as a device, SUBACK inspection, and
 * waiting for something to become true.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { Kysely, Selectable } from 'kysely';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Database, DevicePresenceTable } from '../storage/schema.js';

/** `mqtt.*` settings that lift every per-device rate limit, for tests and benchmarks of what lies behind them. */
export const UNLIMITED_DEVICE_RATES = {
  publishesPerSecond: 1_000_000,
  publishBurst: 1_000_000,
  readingsPerSecond: 1_000_000_000,
  readingsBurst: 1_000_000_000,
  bytesPerSecond: 1024 ** 4,
  bytesBurst: 1024 ** 4,
} as const;

export const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when `check` holds, polling; fails after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await settle(20);
  }
  assert.fail(`not within ${ms} ms: ${what}`);
}

/**
 * The device's presence row once the broker has recorded it online. The broker writes it beside
 * the new session, not before the CONNACK, so a test that has just connected waits for it.
 */
export async function presenceOnline(db: Kysely<Database>, deviceId: string, ms = 5000): Promise<Selectable<DevicePresenceTable>> {
  const row = () => db.selectFrom('device_presence').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  await eventually(async () => (await row())?.connected_since != null, ms, `presence of ${deviceId} online`);
  return (await row())!;
}

/** Connects with the device's key and certificate (or none); resolves on CONNACK accepted, rejects otherwise. */
export function connectDevice(
  port: number,
  ca: string,
  credentials: { key: string; cert: string } | null,
  clientId: string,
  extra: IClientOptions = {},
): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtts://localhost:${port}`, {
      clientId,
      ca,
      ...(credentials ? { key: credentials.key, cert: credentials.cert } : {}),
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...extra,
    });
    client.once('connect', () => resolve(client));
    client.once('error', (error) => {
      client.end(true);
      reject(error);
    });
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** Where mosquitto_pub / mosquitto_sub find the broker and the device's files (`ca.pem`, `<name>.pem`, `<name>.key` in `dir`). */
export interface MosquittoDevice {
  port: number;
  dir: string;
  name: string;
  deviceId: string;
}

/** The arguments that make mosquitto_pub or mosquitto_sub the device (QoS 1, client ID = device ID). */
function mosquittoArgs(device: MosquittoDevice): string[] {
  const { port, dir, name, deviceId } = device;
  return [
    '-h',
    'localhost',
    '-p',
    String(port),
    '--cafile',
    `${dir}/ca.pem`,
    '--cert',
    `${dir}/${name}.pem`,
    '--key',
    `${dir}/${name}.key`,
    '-i',
    deviceId,
    '-q',
    '1',
  ];
}

/** Runs mosquitto_pub or mosquitto_sub as the device with `args` added; its exit code and output. */
export function mosquittoClient(
  command: 'mosquitto_pub' | 'mosquitto_sub',
  device: MosquittoDevice,
  args: string[],
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, [...mosquittoArgs(device), ...args], { timeout: 15_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

/**
 * Runs mosquitto_pub or mosquitto_sub once as each device (`args` added for each), `width` at once
 * and each stopped after 15 s, like mosquittoClient; their exit codes and outputs, in order. One
 * `xargs` starts them all: forking the test process itself, which also runs the broker, costs tens
 * of milliseconds per child on a loaded machine and holds the broker's event loop meanwhile.
 */
export async function mosquittoClients(
  command: 'mosquitto_pub' | 'mosquitto_sub',
  devices: MosquittoDevice[],
  args: (device: MosquittoDevice) => string[],
  width: number,
): Promise<{ code: number; output: string }[]> {
  if (devices.length === 0) return [];
  const argvs = devices.map((device, i) => [String(i), command, ...mosquittoArgs(device), ...args(device)]);
  const size = argvs[0]!.length;
  assert.ok(
    argvs.every((a) => a.length === size),
    'every device runs with as many arguments',
  );
  // Each run prints one line: its index, exit code and output (base64, cut at 1,500 bytes so the line
  // stays under PIPE_BUF and lines of parallel runs never interleave). A run that exits 0 and prints
  // nothing (every good mosquitto_pub) says so with its index alone: the pipeline that encodes an
  // output is three more processes, which were half of those started per device.
  const script =
    'i=$1; shift; out=$(timeout 15 "$@" 2>&1); code=$?; if [ "$code" = 0 ] && [ -z "$out" ]; then echo "$i 0"; ' +
    'else printf "%s %s %s\\n" "$i" "$code" "$(printf %s "$out" | head -c 1500 | base64 -w 0)"; fi';
  const input = argvs.flat().join('\0') + '\0';
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn('xargs', ['-0', '-P', String(width), '-n', String(size), 'sh', '-c', script, 'sh'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk));
    child.on('error', reject);
    child.on('close', () => resolve(out));
    child.stdin.end(input);
  });
  const results: { code: number; output: string }[] = devices.map(() => ({ code: -1, output: 'did not run' }));
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [i, code, output = ''] = line.split(' ');
    results[Number(i)] = { code: Number(code), output: Buffer.from(output, 'base64').toString() };
  }
  return results;
}

/**
 * Resolves when the connection is closed (by the broker or us). With `withinMs`, rejects when it is
 * still open after that long: a test waiting for the broker to cut a device then fails, naming what
 * it waited for, instead of hanging until the runner's timeout.
 */
export const closed = (client: MqttClient, withinMs?: number) =>
  new Promise<void>((resolve, reject) => {
    if (client.disconnected) return resolve();
    const timer =
      withinMs === undefined ? null : setTimeout(() => reject(new Error(`the connection was still open after ${withinMs} ms`)), withinMs);
    client.once('close', () => {
      if (timer) clearTimeout(timer);
      resolve();
    });
  });

/** The SUBACK's granted QoS per filter (mqtt.js rejects when any is 0x80; the packet says which). */
export function granted(client: MqttClient, filters: string[]): Promise<number[]> {
  return client.subscribeAsync(filters, { qos: 1 }).then(
    (grants) => grants.map((g) => g.qos),
    (error: { packet?: { granted: number[] } }) => {
      if (!error.packet) throw error;
      return error.packet.granted;
    },
  );
}

/** Collects the JSON messages a client receives, by topic. */
export function inbox(client: MqttClient): { topic: string; body: any }[] {
  const messages: { topic: string; body: any }[] = [];
  client.on('message', (topic, payload) => {
    let body: unknown = payload.toString();
    try {
      body = JSON.parse(payload.toString());
    } catch {
      // not JSON: kept as text
    }
    messages.push({ topic, body });
  });
  return messages;
}
