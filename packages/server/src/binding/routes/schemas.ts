/**
 * The binding routes' shared schemas: a consumer's device, members, invitations, an operator's
 * binding view. The shadow, a command, readings and the latest values are the operator routes'
 * own schemas (devices/routes/schemas.ts, telemetry/routes.ts): the consumer reads the same shapes.
 */
import { Type } from 'typebox';
import type { DeviceBindingView, InvitationView, MemberView, MyDeviceView } from '@bulwark/protocol';
import { servesView, Strict, Timestamp } from '../../transport/http/schemas.js';

export { Command, Shadow, State } from '../../devices/routes/schemas.js';
export { Latest, ReadingsPage } from '../../telemetry/routes.js';

export const Role = Type.Union([Type.Literal('owner'), Type.Literal('member'), Type.Literal('guest')]);

export const MyDevice = servesView<MyDeviceView>()(
  Strict({
    id: Type.String(),
    serial: Type.String(),
    productId: Type.String(),
    status: Type.String(),
    role: Role,
    label: Type.Union([Type.String(), Type.Null()]),
    since: Timestamp,
  }),
);
export const Member = servesView<MemberView>()(Strict({ userId: Type.String(), email: Type.String(), role: Role, since: Timestamp }));
export const Invitation = servesView<InvitationView>()(
  Strict({
    id: Type.String(),
    deviceId: Type.String(),
    kind: Type.Union([Type.Literal('share'), Type.Literal('transfer')]),
    role: Role,
    email: Type.String(),
    createdAt: Timestamp,
    expiresAt: Timestamp,
  }),
);
export const Binding = servesView<DeviceBindingView>()(
  Strict({
    deviceId: Type.String(),
    bound: Type.Boolean(),
    owner: Type.Union([Member, Type.Null()]),
    shares: Type.Array(Member),
    invitations: Type.Array(Invitation),
    claimCode: Type.Union([Strict({ createdAt: Timestamp, usedAt: Type.Union([Timestamp, Type.Null()]) }), Type.Null()]),
    lastReset: Type.Union([Strict({ requestedAt: Timestamp, confirmedAt: Type.Union([Timestamp, Type.Null()]) }), Type.Null()]),
  }),
);
