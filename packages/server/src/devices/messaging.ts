/**
 * How the devices domain reaches a device without knowing the transport: the MQTT gateway of
 * this node attaches itself on start. A message goes to `d/<deviceId>/<suffix>`; with Redis
 * routing it reaches the device on whichever node holds its session. A node with no broker
 * attached (an API-only node without shared routing) drops device messages and says so.
 */
export interface DeviceMessenger {
  /**
   * Routes a QoS 1 message to the device's topic; resolves once routed, not once delivered.
   * `reply` names where the device answers (MQTT 5 Response Topic and Correlation Data; MQTT
   * 3.1.1 devices follow the topic scheme instead).
   */
  publishToDevice(deviceId: string, suffix: string, payload: unknown, reply?: ReplyTo): Promise<void>;
}

/** Where a request's answer goes: a suffix under the device's own prefix, and the correlation it carries. */
export interface ReplyTo {
  suffix: string;
  correlation: string;
}

export class DeviceLink implements DeviceMessenger {
  private target: DeviceMessenger | null = null;
  dropped = 0;

  attach(target: DeviceMessenger): void {
    this.target = target;
  }

  detach(target: DeviceMessenger): void {
    if (this.target === target) this.target = null;
  }

  get attached(): boolean {
    return this.target !== null;
  }

  async publishToDevice(deviceId: string, suffix: string, payload: unknown, reply?: ReplyTo): Promise<void> {
    if (!this.target) {
      this.dropped++;
      return;
    }
    await this.target.publishToDevice(deviceId, suffix, payload, reply);
  }
}
