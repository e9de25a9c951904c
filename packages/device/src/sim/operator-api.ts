/**
 * The operator API calls the simulator makes with a scoped API key (devices:read, devices:write):
 * find or create its product, register devices (and make gateways of some), and issue their certificates from CSRs in
 * batches (factory provisioning). Answers 429 are waited out (Retry-After) and tried again.
 */
import https from 'node:https';
import { PlatformError } from '../errors.js';
import { httpsJson } from '../http.js';

/** Most items the platform takes in one certificate batch. */
export const CERTIFICATE_BATCH = 500;

export interface IssuedCertificate {
  deviceId: string;
  certificate: string;
}

export class OperatorApi {
  private readonly agent: https.Agent;

  constructor(
    private readonly apiUrl: string,
    private readonly ca: string,
    private readonly apiKey: string,
  ) {
    this.agent = new https.Agent({ ca, keepAlive: true, maxSockets: 8 });
  }

  close(): void {
    this.agent.destroy();
  }

  /** The ID of the product named `name`, created if there is none. */
  async productNamed(name: string): Promise<string> {
    const { products } = await this.call<{ products: { id: string; name: string }[] }>('GET', '/api/v1/products');
    const found = products.find((p) => p.name === name);
    if (found) return found.id;
    return (await this.call<{ id: string }>('POST', '/api/v1/products', { name })).id;
  }

  async registerDevice(serial: string, productId: string): Promise<string> {
    return (await this.call<{ id: string }>('POST', '/api/v1/devices', { serial, productId })).id;
  }

  /** Makes the device a gateway (devices:write): it may then register and relay children. */
  async makeGateway(deviceId: string): Promise<void> {
    await this.call('PUT', `/api/v1/devices/${encodeURIComponent(deviceId)}/gateway`, { enabled: true });
  }

  /** Issues certificates for up to CERTIFICATE_BATCH CSRs (PEM); throws on the first item the platform refused. */
  async issueCertificates(items: { deviceId: string; csr: string }[]): Promise<IssuedCertificate[]> {
    const { results } = await this.call<{
      results: ({ deviceId: string; certificate: string } | { deviceId: string; error: { code: string; message: string } })[];
    }>('POST', '/api/v1/devices/certificates', { items });
    return results.map((r) => {
      if ('error' in r) throw new PlatformError(`${r.deviceId}: ${r.error.message}`, r.error.code, 200);
      return { deviceId: r.deviceId, certificate: r.certificate };
    });
  }

  private async call<T>(method: 'GET' | 'POST' | 'PUT', path: string, json?: unknown): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await httpsJson<T>(new URL(path, this.apiUrl).toString(), {
          method,
          ca: this.ca,
          agent: this.agent,
          headers: { authorization: `Bearer ${this.apiKey}` },
          json,
        });
      } catch (error) {
        if (!(error instanceof PlatformError) || error.status !== 429 || attempt >= 20) throw error;
        const wait = Number(error.details?.retryAfterSeconds ?? 1);
        await new Promise((resolve) => setTimeout(resolve, Math.min(Math.max(wait, 1), 60) * 1000));
      }
    }
  }
}
