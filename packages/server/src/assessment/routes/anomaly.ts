/**
 * The anomaly detection API: a product's rules (read with their source; set whole; reset to the
 * defaults) and a device's behaviour per minute. Reading needs assessment:read; changing rules
 * needs org:manage. Findings the detector raises are read and acted on through /assessment/findings.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, Strict, Timestamp } from '../../transport/http/schemas.js';
import { Severity } from './schemas.js';
import { MAX_WINDOW_MINUTES, METRICS } from '../anomaly/rules.js';
import { MAX_BEHAVIOUR_MINUTES, type AnomalyService } from '../anomaly/service.js';

const COUNTED = [
  Type.Literal('messages'),
  Type.Literal('bytes'),
  Type.Literal('connects'),
  Type.Literal('authFailures'),
  Type.Literal('aclDenials'),
  Type.Literal('payloadErrors'),
  Type.Literal('takeovers'),
  Type.Literal('reboots'),
  Type.Literal('updateFailures'),
] as const;
const Counted = Type.Union([...COUNTED]);
const Metric = Type.Union([...COUNTED, Type.Literal('addresses')], { description: `one of ${METRICS.join(', ')}` });

const ThresholdRule = Strict({
  metric: Metric,
  windowMinutes: Type.Integer({ minimum: 1, maximum: MAX_WINDOW_MINUTES }),
  max: Type.Number({ minimum: 0, description: 'a violation is a value above this over the window' }),
  severity: Severity,
  quarantine: Type.Boolean({ description: 'quarantine the device by itself when violated (the update path stays open)' }),
});
const BaselineRule = Strict({
  metric: Counted,
  scope: Type.Union([Type.Literal('device'), Type.Literal('product')]),
  z: Type.Number({ exclusiveMinimum: 0, description: 'robust z-score (median and MAD) above which the value is anomalous' }),
  minimum: Type.Number({ minimum: 0, description: 'values below this per minute are never anomalous' }),
  severity: Severity,
  quarantine: Type.Boolean(),
});
const Rules = Strict({
  thresholds: Type.Array(ThresholdRule, { maxItems: 32 }),
  baselines: Type.Array(BaselineRule, { maxItems: 32 }),
});
const RulesView = Strict({
  productId: Type.String(),
  source: Type.Union([Type.Literal('product'), Type.Literal('default')]),
  rules: Rules,
  updatedAt: Type.Union([Timestamp, Type.Null()]),
  updatedBy: Type.Union([Type.String(), Type.Null()]),
});
const Minute = Strict({
  minute: Timestamp,
  messages: Type.Integer(),
  bytes: Type.Integer(),
  connects: Type.Integer(),
  authFailures: Type.Integer(),
  aclDenials: Type.Integer(),
  payloadErrors: Type.Integer(),
  takeovers: Type.Integer(),
  reboots: Type.Integer({ description: 'reboots the device reported (the update flow)' }),
  updateFailures: Type.Integer({ description: 'updates the device reported failed or rolled back' }),
  addresses: Type.Integer({ description: 'distinct source addresses seen that minute' }),
});

const ProductId = Strict({ productId: Type.String({ format: 'uuid' }) });
const read = { auth: { principal: 'operator', permission: 'assessment:read' } } as const;
const manage = { auth: { principal: 'operator', permission: 'org:manage' } } as const;

export function anomalyRoutes({ anomaly }: { anomaly: AnomalyService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const path = '/assessment/anomaly/products/:productId/rules';

    app.get(
      path,
      {
        config: read,
        schema: {
          tags: ['assessment'],
          summary: "A product's anomaly rules (its own, or the defaults)",
          params: ProductId,
          response: { 200: RulesView, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => anomaly.rules(actorOf(request), request.params.productId),
    );

    app.put(
      path,
      {
        config: manage,
        schema: {
          tags: ['assessment'],
          summary: "Sets a product's anomaly rules (thresholds and learned baselines); audited",
          params: ProductId,
          body: Rules,
          response: { 200: RulesView, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => anomaly.setRules(actorOf(request), request.params.productId, request.body),
    );

    app.delete(
      path,
      {
        config: manage,
        schema: {
          tags: ['assessment'],
          summary: 'Puts a product back on the default anomaly rules; audited',
          params: ProductId,
          response: { 200: RulesView, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => anomaly.resetRules(actorOf(request), request.params.productId),
    );

    app.get(
      '/assessment/anomaly/devices/:deviceId/behaviour',
      {
        config: read,
        schema: {
          tags: ['assessment'],
          summary: "A device's behaviour per minute (minutes without activity have no entry)",
          params: Strict({ deviceId: Type.String({ format: 'uuid' }) }),
          querystring: Strict({ minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_BEHAVIOUR_MINUTES, default: 60 })) }),
          response: { 200: Strict({ minutes: Type.Array(Minute) }), ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => ({ minutes: await anomaly.behaviour(actorOf(request), request.params.deviceId, request.query.minutes ?? 60) }),
    );
  };
}
