/**
 * The operator side of the device shadow and of commands, under /api/v1/devices/:id: read the
 * shadow and its history, patch the desired state (optionally at a version), send a command and
 * wait for its outcome.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ShadowService } from '../shadow.js';
import { actorOf } from '../../accounts/routes/authentication.js';
import { errorResponses, Id, IdParams, Strict, Timestamp } from '../../transport/http/schemas.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, MAX_COMMAND_TIMEOUT_MS, MAX_WAIT_MS, type CommandService } from '../commands.js';
import { Command, Shadow, State } from './schemas.js';

const Change = Strict({
  kind: Type.Union([Type.Literal('reported'), Type.Literal('desired')]),
  version: Type.Integer(),
  change: State,
  state: State,
  actor: Type.Union([Type.String(), Type.Null()]),
  changedAt: Timestamp,
});
export function stateRoutes({ shadow, commands }: { shadow: ShadowService; commands: CommandService }) {
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const read = { auth: { principal: 'operator', permission: 'devices:read' } } as const;
    const write = { auth: { principal: 'operator', permission: 'devices:write' } } as const;

    app.get(
      '/devices/:id/state',
      {
        config: read,
        schema: {
          tags: ['devices'],
          summary: "The device's reported and desired state and the delta between them",
          params: IdParams,
          response: { 200: Shadow, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => shadow.get(actorOf(request), request.params.id),
    );
    app.patch(
      '/devices/:id/state/desired',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary: 'Merge a patch into the desired state (null deletes a key); with version, only if nobody changed it since',
          params: IdParams,
          body: Strict({ state: State, version: Type.Optional(Type.Integer({ minimum: 0 })) }),
          response: { 200: Shadow, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => shadow.setDesired(actorOf(request), request.params.id, request.body.state, request.body.version),
    );
    app.get(
      '/devices/:id/state/history',
      {
        config: read,
        schema: {
          tags: ['devices'],
          summary: 'Changes of the reported and desired state, newest first',
          params: IdParams,
          querystring: Strict({
            kind: Type.Optional(Type.Union([Type.Literal('reported'), Type.Literal('desired')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
            beforeVersion: Type.Optional(Type.Integer({ minimum: 1 })),
          }),
          response: { 200: Strict({ changes: Type.Array(Change) }), ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => ({ changes: await shadow.history(actorOf(request), request.params.id, request.query) }),
    );

    app.post(
      '/devices/:id/commands',
      {
        config: write,
        schema: {
          tags: ['devices'],
          summary: 'Send a command to an online device; its outcome is read from the command',
          params: IdParams,
          body: Strict({
            name: Type.String({ minLength: 1, maxLength: 64 }),
            params: Type.Optional(State),
            timeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: MAX_COMMAND_TIMEOUT_MS, default: DEFAULT_COMMAND_TIMEOUT_MS })),
          }),
          response: { 202: Command, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request, reply) => reply.status(202).send(await commands.send(actorOf(request), request.params.id, request.body)),
    );
    app.get(
      '/devices/:id/commands',
      {
        config: read,
        schema: {
          tags: ['devices'],
          summary: "The device's commands, newest first",
          params: IdParams,
          querystring: Strict({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) }),
          response: { 200: Strict({ commands: Type.Array(Command) }), ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => ({ commands: await commands.list(actorOf(request), request.params.id, request.query.limit) }),
    );
    app.get(
      '/devices/:id/commands/:commandId',
      {
        config: read,
        schema: {
          tags: ['devices'],
          summary: "A command's outcome; waitMs waits (up to 30 s) while it is pending",
          params: Strict({ id: Id, commandId: Id }),
          querystring: Strict({ waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_MS })) }),
          response: { 200: Command, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => commands.get(actorOf(request), request.params.id, request.params.commandId, request.query.waitMs ?? 0),
    );
  };
}
