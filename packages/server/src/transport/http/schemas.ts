/**
 * Schema helpers for routes: strict objects (unknown fields are refused, not dropped), response
 * schemas held to the wire view they serve, the shared error body, and the standard error
 * responses a route may answer with.
 */
import { Type, type Static, type TProperties, type TSchema } from 'typebox';

/** An object that refuses properties it does not declare. */
export function Strict<T extends TProperties>(properties: T, options: { description?: string } = {}) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

/** `unknown` when both types name the same fields; otherwise a type naming the fields on one side only. */
type SameFields<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never]
  ? unknown
  : { fieldsOnOneSide: Exclude<keyof A, keyof B> | Exclude<keyof B, keyof A> };

/**
 * A response schema held to the wire view it serves (a type of @bulwark/protocol): it compiles only
 * when both name the same fields, so a field left out of the schema (which the serializer would
 * silently drop from every answer) or added to one side alone fails the build. The handler's answer
 * is checked against the schema's type by the type provider: together, a change on either side
 * that breaks the wire contract does not compile. `servesView<DeviceView>()(Strict({ ... }))`.
 */
export function servesView<View>() {
  return <S extends TSchema>(schema: S & SameFields<Static<S>, View>): S => schema;
}

export const ErrorBodySchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorBody', description: 'Every error: a stable code, a message saying what was wrong, and details' },
);

export const ErrorRef = Type.Ref('ErrorBody');

/** Error responses every authenticated route can give, to spread into `response`. */
export function errorResponses(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorRef]));
}

/**
 * A successful answer that is not one of our JSON documents (PEM, JSON lines, signed metadata,
 * firmware bytes): documented by its media type; the route sends the bytes it produced as they are.
 */
export function Raw(mediaType: string, description: string) {
  return { description, content: { [mediaType]: { schema: Type.Unsafe<unknown>({ type: 'string' }) } } };
}

export const Ok = Strict({ ok: Type.Literal(true) });

/** A resource's ID as a path or body names it (a device, user, release, key, ...). */
export const Id = Type.String({ minLength: 1, maxLength: 64 });

/** The path parameters of a route on one resource (`/devices/:id`, `/users/:id`, ...). */
export const IdParams = Strict({ id: Id });

export const Timestamp = Type.String({ format: 'date-time' });
