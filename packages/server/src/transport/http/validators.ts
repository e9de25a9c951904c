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

type Validate = ReturnType<ReturnType<ValidatorFactory>>;

// One ajv pair per process (keyed by the shared schemas), and one compiled function per distinct
// schema: compiling costs about 3 s of CPU per app, paid again by every node a process starts (each
// test file starts one or more) and for every route repeating a schema (`{ id }` params, error bodies).
// A compiled function is pure (it keeps no state between calls but its last `errors`, as before).
const fromPool = AjvCompiler();
const compiled = new Map<string, Validate>();

/** Fastify's `schemaController.compilersFactory.buildValidator`: strict bodies, coerced text parts. */
export const buildValidator: ValidatorFactory = (externalSchemas) => {
  const strict = fromPool(externalSchemas, { customOptions: { ...SHARED, coerceTypes: false } });
  const coercing = fromPool(externalSchemas, { customOptions: { ...SHARED, coerceTypes: 'array' } });
  const externals = JSON.stringify(externalSchemas);
  return (route) => {
    const body = route.httpPart === 'body';
    const key = `${body ? 'strict' : 'coercing'}\n${externals}\n${JSON.stringify(route.schema)}`;
    let validate = compiled.get(key);
    if (!validate) {
      validate = (body ? strict : coercing)(route);
      compiled.set(key, validate);
    }
    return validate;
  };
};
