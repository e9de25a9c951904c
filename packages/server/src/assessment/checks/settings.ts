/** Checks on the deployment's settings: a plain-text MQTT port, rate limits off or very high, trust-proxy on. */
import type { Check, Observation } from './check.js';

export const plainMqttPort: Check = {
  id: 'plain-mqtt-port',
  rationale: 'A plain-text MQTT port carries device tokens and data unencrypted: anyone on the path reads them.',
  severity: 'medium',
  title: 'A plain-text MQTT port is open',
  async evaluate(ctx) {
    const { mqtt } = ctx.config;
    if (!mqtt.enabled || mqtt.plainPort === null) return [];
    return [{ evidence: { setting: 'mqtt.plainPort', port: mqtt.plainPort }, resources: [{ type: 'setting', id: 'mqtt.plainPort' }] }];
  },
};

export const rateLimitsWeak: Check = {
  id: 'rate-limits-weak',
  rationale: 'Rate limits set very high are rate limits off: password guessing and floods go unchecked.',
  severity: 'medium',
  title: 'Rate limits off or very high',
  async evaluate(ctx) {
    const max = ctx.config.assessment.maxRateLimitPerMinute;
    const settings: [string, number][] = [
      ['http.rateLimitPerMinute', ctx.config.http.rateLimitPerMinute],
      ['auth.loginRateLimitPerMinute', ctx.config.auth.loginRateLimitPerMinute],
      ['apps.tokenRateLimitPerMinute', ctx.config.apps.tokenRateLimitPerMinute],
    ];
    const weak = settings.filter(([, value]) => value > max);
    if (weak.length === 0) return [];
    const observation: Observation = {
      evidence: { maxPerMinute: max, settings: Object.fromEntries(weak) },
      resources: weak.map(([name]) => ({ type: 'setting', id: name })),
    };
    return [observation];
  },
};

export const trustProxyOn: Check = {
  id: 'trust-proxy-on',
  rationale:
    'With trust-proxy on, X-Forwarded-For decides the client address: without a proxy in front, callers forge it past rate limits and audit.',
  severity: 'low',
  title: 'HTTP trust-proxy is on',
  async evaluate(ctx) {
    if (!ctx.config.http.trustProxy) return [];
    return [{ evidence: { setting: 'http.trustProxy', value: true }, resources: [{ type: 'setting', id: 'http.trustProxy' }] }];
  },
};
