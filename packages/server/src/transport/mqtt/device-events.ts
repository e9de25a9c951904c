/**
 * The binding domain's DeviceEventSource on the broker's emitter (Aedes mq; mqemitter-redis in
 * cluster mode, so every node sees every device's messages): one emitter subscription per
 * watched device on this node, fanned out to its live streams. Binding-change notices travel on
 * `$bulwark/binding/<deviceId>`, a topic no device can subscribe to (the ACL keeps devices below
 * `d/<own id>/`), published by the platform only.
 */
import type { Aedes, AedesPublishPacket } from 'aedes';
import { deviceTopic, STATE_REPORTED, TELEMETRY, TELEMETRY_CBOR } from '@bulwark/protocol';
import type { DeviceEvent, DeviceEventSource } from '../../binding/live.js';

const BINDING_NOTICE = '$bulwark/binding';
const SIGN_OUT_NOTICE = '$bulwark/signout';

type Listener = (event: DeviceEvent) => void;

interface Watched {
  listeners: Set<Listener>;
  handler: (packet: AedesPublishPacket, done: () => void) => void;
  topics: string[];
}

export class BrokerDeviceEvents implements DeviceEventSource {
  private readonly watched = new Map<string, Watched>();

  constructor(private readonly broker: Aedes) {}

  watch(deviceId: string, listener: Listener): () => void {
    let entry = this.watched.get(deviceId);
    if (!entry) {
      const listeners = new Set<Listener>();
      const telemetry = deviceTopic(deviceId, TELEMETRY);
      const cbor = deviceTopic(deviceId, TELEMETRY_CBOR);
      const reported = deviceTopic(deviceId, STATE_REPORTED);
      const notice = `${BINDING_NOTICE}/${deviceId}`;
      const handler = (packet: AedesPublishPacket, done: () => void) => {
        const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
        const event: DeviceEvent =
          packet.topic === telemetry
            ? { kind: 'telemetry', format: 'json', payload }
            : packet.topic === cbor
              ? { kind: 'telemetry', format: 'cbor', payload }
              : packet.topic === reported
                ? { kind: 'reported', payload }
                : { kind: 'binding' };
        for (const l of listeners) l(event);
        done();
      };
      entry = { listeners, handler, topics: [telemetry, cbor, reported, notice] };
      for (const topic of entry.topics) this.broker.subscribe(topic, handler, () => undefined);
      this.watched.set(deviceId, entry);
    }
    entry.listeners.add(listener);
    const watched = entry;
    return () => {
      watched.listeners.delete(listener);
      if (watched.listeners.size > 0 || this.watched.get(deviceId) !== watched) return;
      this.watched.delete(deviceId);
      for (const topic of watched.topics) this.broker.unsubscribe(topic, watched.handler, () => undefined);
    };
  }

  private signOutListeners: ((userId: string) => void)[] | null = null;

  /** Sign-out notices from every node, on `$bulwark/signout/<userId>` (one emitter subscription for all). */
  onSignOut(listener: (userId: string) => void): void {
    if (!this.signOutListeners) {
      const listeners: ((userId: string) => void)[] = [];
      this.signOutListeners = listeners;
      this.broker.subscribe(
        `${SIGN_OUT_NOTICE}/+`,
        (packet: AedesPublishPacket, done: () => void) => {
          const userId = packet.topic.slice(SIGN_OUT_NOTICE.length + 1);
          for (const l of listeners) l(userId);
          done();
        },
        () => undefined,
      );
    }
    this.signOutListeners.push(listener);
  }

  announceSignOut(userId: string): void {
    this.broker.publish(
      { cmd: 'publish', topic: `${SIGN_OUT_NOTICE}/${userId}`, payload: Buffer.alloc(0), qos: 0, retain: false, dup: false },
      () => undefined,
    );
  }

  announce(deviceId: string): void {
    this.broker.publish(
      { cmd: 'publish', topic: `${BINDING_NOTICE}/${deviceId}`, payload: Buffer.alloc(0), qos: 0, retain: false, dup: false },
      () => undefined,
    );
  }
}
