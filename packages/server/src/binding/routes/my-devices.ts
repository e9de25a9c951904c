/**
 * A consumer's devices under /api/v1/my: claim, list, read, rename, state, telemetry, allowed
 * commands, sharing, transfer, leave and unbind. Every route is for consumers and names the
 * OAuth scope a companion app's token needs (devices:read, devices:control, devices:share);
 * the services check the consumer's standing on the device (none: 404) and role on every call.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { MyPresenceView } from '@bulwark/protocol';
import { actorOf } from '../../accounts/routes/authentication.js';
import { MAX_WAIT_MS } from '../../devices/commands.js';
import { errorResponses, Id, IdParams, Ok, servesView, Strict, Timestamp } from '../../transport/http/schemas.js';
import { MAX_LIMIT } from '../../telemetry/service.js';
import type { ClaimService } from '../claims.js';
import type { ConsumerDeviceService } from '../consumer-devices.js';
import type { BindingService } from '../service.js';
import { Command, Invitation, Latest, Member, MyDevice, ReadingsPage, Shadow, State } from './schemas.js';

const Instant = Type.Optional(
  Type.String({ minLength: 1, maxLength: 40, description: 'ISO 8601 date-time or milliseconds since the epoch' }),
);

export function myDeviceRoutes(deps: { claims: ClaimService; binding: BindingService; consumerDevices: ConsumerDeviceService }) {
  const { claims, binding, consumerDevices } = deps;
  return async function plugin(root: FastifyInstance): Promise<void> {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const read = { auth: { principal: 'consumer', appScope: 'devices:read' } } as const;
    const control = { auth: { principal: 'consumer', appScope: 'devices:control' } } as const;
    const share = { auth: { principal: 'consumer', appScope: 'devices:share' } } as const;
    const tags = ['my devices'];

    app.get(
      '/my/devices',
      {
        config: read,
        schema: {
          tags,
          summary: 'Devices I own or that are shared with me, with my role',
          response: { 200: Strict({ devices: Type.Array(MyDevice) }), ...errorResponses(401, 403) },
        },
      },
      async (request) => ({ devices: await binding.myDevices(actorOf(request)) }),
    );
    app.post(
      '/my/devices/claim',
      {
        config: share,
        schema: {
          tags,
          summary: 'Claim a device with its claim code while its claim window is open (after a button press on the device)',
          body: Strict({
            code: Type.String({ minLength: 1, maxLength: 64, description: 'the claim code printed on the device or in its QR code' }),
            proof: Type.Optional(
              Strict(
                {
                  nonce: Type.String({ minLength: 16, maxLength: 128 }),
                  signature: Type.String({ minLength: 1, maxLength: 512, description: "the device's signature, DER, base64" }),
                },
                { description: 'instead of a button press: the challenge from POST /my/devices/claim/challenge, signed by the device' },
              ),
            ),
          }),
          response: { 201: MyDevice, ...errorResponses(400, 401, 403, 404, 409, 429) },
        },
      },
      async (request, reply) => reply.status(201).send(await claims.claim(actorOf(request), request.body.code, request.body.proof)),
    );
    app.post(
      '/my/devices/claim/challenge',
      {
        config: share,
        schema: {
          tags,
          summary: 'A nonce for the device to sign (relayed by the app over a local link): the other presence proof for a claim',
          body: Strict({ code: Type.String({ minLength: 1, maxLength: 64 }) }),
          response: { 201: Strict({ nonce: Type.String(), expiresAt: Timestamp }), ...errorResponses(400, 401, 403, 404, 409, 429) },
        },
      },
      async (request, reply) => reply.status(201).send(await claims.challenge(actorOf(request), request.body.code)),
    );
    app.get(
      '/my/devices/:id',
      {
        config: read,
        schema: { tags, summary: 'One of my devices', params: IdParams, response: { 200: MyDevice, ...errorResponses(401, 403, 404) } },
      },
      async (request) => binding.myDevice(actorOf(request), request.params.id),
    );
    app.patch(
      '/my/devices/:id',
      {
        config: control,
        schema: {
          tags,
          summary: 'Rename the device for me (my own label; null clears it)',
          params: IdParams,
          body: Strict({ label: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]) }),
          response: { 200: MyDevice, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => binding.rename(actorOf(request), request.params.id, request.body.label),
    );
    app.delete(
      '/my/devices/:id',
      {
        config: share,
        schema: {
          tags,
          summary: 'Unbind the device (owner only): every share ends, the device erases its user data and can be claimed again',
          params: IdParams,
          response: { 200: Ok, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        await binding.unbind(actorOf(request), request.params.id);
        return { ok: true as const };
      },
    );
    app.post(
      '/my/devices/:id/leave',
      {
        config: share,
        schema: {
          tags,
          summary: 'Give up my share of the device (members and guests)',
          params: IdParams,
          response: { 200: Ok, ...errorResponses(401, 403, 404, 409) },
        },
      },
      async (request) => {
        await binding.leave(actorOf(request), request.params.id);
        return { ok: true as const };
      },
    );

    app.get(
      '/my/devices/:id/state',
      {
        config: read,
        schema: {
          tags,
          summary: "The device's reported and desired state",
          params: IdParams,
          response: { 200: Shadow, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => consumerDevices.state(actorOf(request), request.params.id),
    );
    app.patch(
      '/my/devices/:id/state/desired',
      {
        config: control,
        schema: {
          tags,
          summary: 'Merge a patch into the desired state (owner and members)',
          params: IdParams,
          body: Strict({ state: State, version: Type.Optional(Type.Integer({ minimum: 0 })) }),
          response: { 200: Shadow, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => consumerDevices.setDesired(actorOf(request), request.params.id, request.body.state, request.body.version),
    );
    app.get(
      '/my/devices/:id/telemetry',
      {
        config: read,
        schema: {
          tags,
          summary: "The device's readings in a time range, oldest first, cursor-paginated",
          params: IdParams,
          querystring: Strict({
            from: Instant,
            to: Instant,
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT })),
            cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          }),
          response: { 200: ReadingsPage, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => consumerDevices.readings(actorOf(request), request.params.id, request.query),
    );
    app.get(
      '/my/devices/:id/telemetry/latest',
      {
        config: read,
        schema: {
          tags,
          summary: 'The latest value of each reading name',
          params: IdParams,
          response: { 200: Latest, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => consumerDevices.latest(actorOf(request), request.params.id),
    );
    app.get(
      '/my/devices/:id/presence',
      {
        config: read,
        schema: {
          tags,
          summary: 'Whether the device is connected now, and since when',
          params: IdParams,
          response: {
            200: servesView<MyPresenceView>()(Strict({ online: Type.Boolean(), since: Type.Union([Timestamp, Type.Null()]) })),
            ...errorResponses(401, 403, 404),
          },
        },
      },
      async (request) => consumerDevices.presence(actorOf(request), request.params.id),
    );
    app.post(
      '/my/devices/:id/commands',
      {
        config: control,
        schema: {
          tags,
          summary: 'Send one of the commands the companion app may send (binding.consumerCommands) to the online device',
          params: IdParams,
          body: Strict({ name: Type.String({ minLength: 1, maxLength: 64 }), params: Type.Optional(State) }),
          response: { 202: Command, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request, reply) =>
        reply.status(202).send(await consumerDevices.sendCommand(actorOf(request), request.params.id, request.body)),
    );
    app.get(
      '/my/devices/:id/commands/:commandId',
      {
        config: control,
        schema: {
          tags,
          summary: "A command's outcome; waitMs waits while it is pending",
          params: Strict({ id: Id, commandId: Id }),
          querystring: Strict({ waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_MS })) }),
          response: { 200: Command, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => consumerDevices.command(actorOf(request), request.params.id, request.params.commandId, request.query.waitMs ?? 0),
    );

    app.get(
      '/my/devices/:id/shares',
      {
        config: share,
        schema: {
          tags,
          summary: 'Who the device is shared with, and pending invitations (owner only)',
          params: IdParams,
          response: { 200: Strict({ members: Type.Array(Member), invitations: Type.Array(Invitation) }), ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => binding.shares(actorOf(request), request.params.id),
    );
    app.post(
      '/my/devices/:id/shares',
      {
        config: share,
        schema: {
          tags,
          summary: 'Invite a consumer (by email) to the device as member (control) or guest (view); they accept in their account',
          params: IdParams,
          body: Strict({
            email: Type.String({ minLength: 3, maxLength: 254 }),
            role: Type.Union([Type.Literal('member'), Type.Literal('guest')]),
          }),
          response: { 201: Invitation, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request, reply) => reply.status(201).send(await binding.invite(actorOf(request), request.params.id, request.body)),
    );
    app.delete(
      '/my/devices/:id/shares/:userId',
      {
        config: share,
        schema: {
          tags,
          summary: "End a member's or guest's access at once (their live streams close)",
          params: Strict({ id: Id, userId: Id }),
          response: { 200: Ok, ...errorResponses(400, 401, 403, 404) },
        },
      },
      async (request) => {
        await binding.revoke(actorOf(request), request.params.id, request.params.userId);
        return { ok: true as const };
      },
    );
    app.delete(
      '/my/devices/:id/invitations/:invitationId',
      {
        config: share,
        schema: {
          tags,
          summary: 'Withdraw an invitation or transfer offer',
          params: Strict({ id: Id, invitationId: Id }),
          response: { 200: Ok, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        await binding.cancelInvitation(actorOf(request), request.params.id, request.params.invitationId);
        return { ok: true as const };
      },
    );
    app.post(
      '/my/devices/:id/transfer',
      {
        config: share,
        schema: {
          tags,
          summary:
            'Offer the device to another consumer (by email); on their accept they own it, every share ends and the device erases its user data',
          params: IdParams,
          body: Strict({ email: Type.String({ minLength: 3, maxLength: 254 }) }),
          response: { 201: Invitation, ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request, reply) => reply.status(201).send(await binding.transfer(actorOf(request), request.params.id, request.body.email)),
    );

    app.get(
      '/my/invitations',
      {
        config: share,
        schema: {
          tags,
          summary: 'Invitations and transfer offers waiting for me',
          response: { 200: Strict({ invitations: Type.Array(Invitation) }), ...errorResponses(401, 403) },
        },
      },
      async (request) => ({ invitations: await binding.myInvitations(actorOf(request)) }),
    );
    app.post(
      '/my/invitations/:invitationId/accept',
      {
        config: share,
        schema: {
          tags,
          summary: 'Accept an invitation or a transfer offer',
          params: Strict({ invitationId: Id }),
          response: { 200: MyDevice, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => binding.accept(actorOf(request), request.params.invitationId),
    );
    app.delete(
      '/my/invitations/:invitationId',
      {
        config: share,
        schema: {
          tags,
          summary: 'Decline an invitation or a transfer offer',
          params: Strict({ invitationId: Id }),
          response: { 200: Ok, ...errorResponses(401, 403, 404) },
        },
      },
      async (request) => {
        await binding.decline(actorOf(request), request.params.invitationId);
        return { ok: true as const };
      },
    );
  };
}
