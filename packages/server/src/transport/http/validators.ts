/**
 * Schema validation with two ajv instances: request bodies are JSON and are checked strictly
 * (no type coercion: `123` is not a string, `"7"` not a number, `null` not `""`, a string not a
 * one-element array), while the query string, path parameters and headers arrive as text and are
 * coerced to the types their schemas declare. Unknown fields are refused in both.
 */
import AjvCompiler from '@fastify/ajv-compiler';
import type { ValidatorFactory } from '@fastify/ajv-compiler';

// allErrors stays off: collecting every error of a hostile document costs unbounded time.
const SHARED = { removeAdditional: false, useDefaults: true, allErrors: false } as const;

/** Fastify's `schemaController.compilersFactory.buildValidator`: strict bodies, coerced text parts. */
export const buildValidator: ValidatorFactory = (externalSchemas) => {
  const fromPool = AjvCompiler();
  const strict = fromPool(externalSchemas, { customOptions: { ...SHARED, coerceTypes: false } });
  const coercing = fromPool(externalSchemas, { customOptions: { ...SHARED, coerceTypes: 'array' } });
  return (route) => (route.httpPart === 'body' ? strict : coercing)(route);
};
