/** The binding routes' shared schemas: a consumer's device, members, invitations, an operator's binding view. */
import { Type } from 'typebox';
import { Strict, Timestamp } from '../../transport/http/schemas.js';

export const Id = Type.String({ minLength: 1, maxLength: 64 });
export const DeviceParams = Strict({ id: Id });
export const Role = Type.Union([Type.Literal('owner'), Type.Literal('member'), Type.Literal('guest')]);
export const State = Type.Record(Type.String(), Type.Unknown());

export const MyDevice = Strict({
  id: Type.String(),
  serial: Type.String(),
  productId: Type.String(),
  status: Type.String(),
  role: Role,
  label: Type.Union([Type.String(), Type.Null()]),
  since: Timestamp,
});
export const Member = Strict({ userId: Type.String(), email: Type.String(), role: Role, since: Timestamp });
export const Invitation = Strict({
  id: Type.String(),
  deviceId: Type.String(),
  kind: Type.Union([Type.Literal('share'), Type.Literal('transfer')]),
  role: Role,
  email: Type.String(),
  createdAt: Timestamp,
  expiresAt: Timestamp,
});
export const Binding = Strict({
  deviceId: Type.String(),
  bound: Type.Boolean(),
  owner: Type.Union([Member, Type.Null()]),
  shares: Type.Array(Member),
  invitations: Type.Array(Invitation),
  claimCode: Type.Union([Strict({ createdAt: Timestamp, usedAt: Type.Union([Timestamp, Type.Null()]) }), Type.Null()]),
  lastReset: Type.Union([Strict({ requestedAt: Timestamp, confirmedAt: Type.Union([Timestamp, Type.Null()]) }), Type.Null()]),
});
const Side = Strict({ state: State, version: Type.Integer(), updatedAt: Type.Union([Timestamp, Type.Null()]) });
export const Shadow = Strict({ deviceId: Type.String(), reported: Side, desired: Side, delta: State });
export const Command = Strict({
  id: Type.String(),
  deviceId: Type.String(),
  name: Type.String(),
  params: State,
  status: Type.Union([
    Type.Literal('pending'),
    Type.Literal('succeeded'),
    Type.Literal('failed'),
    Type.Literal('rejected'),
    Type.Literal('timed_out'),
  ]),
  result: Type.Unknown(),
  error: Type.Union([Type.String(), Type.Null()]),
  createdAt: Timestamp,
  expiresAt: Timestamp,
  completedAt: Type.Union([Timestamp, Type.Null()]),
});
const Value = Type.Union([Type.Null(), Type.Boolean(), Type.Number(), Type.String()]);
export const ReadingsPage = Strict({
  readings: Type.Array(Strict({ ts: Timestamp, receivedAt: Timestamp, values: Type.Record(Type.String(), Value) })),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
export const Latest = Strict({
  lookback: Type.Integer(),
  values: Type.Record(Type.String(), Strict({ value: Value, ts: Timestamp })),
});
