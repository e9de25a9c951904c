/**
 * Live state of one of my devices as server-sent events (GET /api/v1/my/devices/:id/live,
 * text/event-stream): first the reported state as it stands, then `telemetry` and `reported`
 * events as the device sends them, from whichever node it is connected to. The stream ends with
 * an `end` event (`revoked` when the consumer's standing on the device is gone, `expired` after
 * binding.liveStreamMaxSeconds, `shutdown`); a comment line every 15 s keeps proxies from
 * closing it. At most binding.maxLiveStreamsPerConsumer streams per consumer (429 beyond).
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, IdParams, Raw } from '../../transport/http/schemas.js';
import type { ConsumerDeviceService } from '../consumer-devices.js';

const KEEPALIVE_MS = 15_000;

export function liveRoutes({ consumerDevices }: { consumerDevices: ConsumerDeviceService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/my/devices/:id/live',
      {
        config: { auth: { principal: 'consumer', appScope: 'devices:read' } },
        schema: {
          tags: ['my devices'],
          summary: "The device's telemetry and reported state as they arrive (server-sent events: reported, telemetry, end)",
          params: IdParams,
          response: {
            200: Raw('text/event-stream', 'Server-sent events: `reported` {state}, `telemetry` {readings}, `end` {reason}'),
            ...errorResponses(401, 403, 404, 429),
          },
        },
      },
      async (request, reply) => {
        const actor = actorOf(request);
        const deviceId = request.params.id;
        const stream = new PassThrough();
        const write = (event: string, data: unknown) => {
          if (!stream.writableEnded) stream.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        };
        const initial = await consumerDevices.state(actor, deviceId);
        const close = await consumerDevices.openLive(actor, deviceId, { send: write, close: () => stream.end() });
        const keepalive = setInterval(() => stream.write(': keep-alive\n\n'), KEEPALIVE_MS);
        keepalive.unref();
        stream.once('close', () => clearInterval(keepalive));
        reply.raw.once('close', () => {
          clearInterval(keepalive);
          close();
          stream.end();
        });
        write('reported', { state: initial.reported.state });
        return reply
          .header('content-type', 'text/event-stream')
          .header('cache-control', 'no-store')
          .header('x-accel-buffering', 'no')
          .send(stream);
      },
    );
  };
}
