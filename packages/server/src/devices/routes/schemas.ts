/**
 * The devices routes' schemas that other route files answer with too: a device's status, its shadow
 * (reported and desired state, the delta) and a command with its outcome, as the operator routes (devices/routes) and the consumer routes (binding/routes) serve them.
 */
import { Type } from 'typebox';
import { DEVICE_STATUSES, type DeviceStatus, type CommandView, type ShadowView } from '@bulwark/protocol';
import { servesView, Strict, Timestamp } from '../../transport/http/schemas.js';

export const Status = Type.Unsafe<DeviceStatus>(Type.Union(DEVICE_STATUSES.map((status) => Type.Literal(status))));
/** A JSON object: a state, a change of it, a command's parameters. */
export const State = Type.Record(Type.String(), Type.Unknown());

const Side = Strict({ state: State, version: Type.Integer(), updatedAt: Type.Union([Timestamp, Type.Null()]) });
export const Shadow = servesView<ShadowView>()(Strict({ deviceId: Type.String(), reported: Side, desired: Side, delta: State }));

const CommandStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('rejected'),
  Type.Literal('timed_out'),
]);
export const Command = servesView<CommandView>()(
  Strict({
    id: Type.String(),
    deviceId: Type.String(),
    name: Type.String(),
    params: State,
    status: CommandStatus,
    result: Type.Unknown(),
    error: Type.Union([Type.String(), Type.Null()]),
    createdAt: Timestamp,
    expiresAt: Timestamp,
    completedAt: Type.Union([Timestamp, Type.Null()]),
  }),
);
