/**
 * The agent's channel over the device's own MQTT connection (the SDK's DeviceClient): statuses and
 * signed version reports go out at QoS 1 through the client's persistent queue, so they survive
 * a lost connection, and `updates/available` hints trigger a check. The report resolves only on
 * its PUBACK, which is what the default health check waits for.
 */
import { UPDATE_TOPICS } from '@bulwark/protocol';
import type { UpdateChannel } from './agent.js';

/** What the agent needs of the SDK client (DeviceClient.publish and DeviceClient.onTopic). */
export interface UpdateMessagingClient {
  publish(suffix: string, payload: unknown): { seq: number };
  onTopic(suffix: string, handler: (payload: Buffer) => void): unknown;
  on(event: 'acked', listener: (message: { seq: number }) => void): unknown;
  off(event: 'acked', listener: (message: { seq: number }) => void): unknown;
}

export function mqttUpdateChannel(client: UpdateMessagingClient, ackTimeoutMs = 10_000): UpdateChannel {
  return {
    status: (status) => void client.publish(UPDATE_TOPICS.status, status),
    report: (report) => acknowledged(client, client.publish(UPDATE_TOPICS.report, report).seq, ackTimeoutMs),
  };
}

/**
 * Calls `check` on each `updates/available` hint. The hint carries no authority (the director's
 * signed metadata decides), so a malformed one is ignored rather than answered.
 */
export function onUpdatesAvailable(client: UpdateMessagingClient, check: (rolloutId: string) => void): void {
  client.onTopic(UPDATE_TOPICS.available, (payload) => {
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    const rolloutId = (body as { rolloutId?: unknown } | null)?.rolloutId;
    if (typeof rolloutId === 'string') check(rolloutId);
  });
}

function acknowledged(client: UpdateMessagingClient, seq: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAcked = (message: { seq: number }) => {
      if (message.seq !== seq) return;
      clearTimeout(timer);
      client.off('acked', onAcked);
      resolve();
    };
    const timer = setTimeout(() => {
      client.off('acked', onAcked);
      reject(new Error(`The platform did not acknowledge the version report within ${timeoutMs} ms`));
    }, timeoutMs);
    // A report still queued must not keep a finished agent alive.
    timer.unref();
    client.on('acked', onAcked);
  });
}
