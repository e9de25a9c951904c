/**
 * Response serialisation with fast-json-stringify, as Fastify does by default, but one compiled
 * function per distinct schema in the process rather than per route of each app. Compiling the
 * response schemas is most of the cost of building the app (about 0.6 s of CPU each time, paid by
 * every node a process starts: each test file starts several) and routes repeat schemas (error
 * bodies, `{ id }` answers). A compiled serializer is a pure function of its schema and options.
 */
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { SerializerFactory } from '@fastify/fast-json-stringify-compiler';

type Serialize = ReturnType<ReturnType<SerializerFactory>>;

const fromPool = SerializerSelector();
const compiled = new Map<string, Serialize>();

/** Fastify's `schemaController.compilersFactory.buildSerializer`, with compiled functions shared. */
export const buildSerializer: SerializerFactory = (externalSchemas, options) => {
  const compile = fromPool(externalSchemas, options);
  const shared = `${JSON.stringify(externalSchemas)}\n${JSON.stringify(options)}`;
  return (route) => {
    const key = `${shared}\n${JSON.stringify(route.schema)}`;
    let serialize = compiled.get(key);
    if (!serialize) {
      serialize = compile(route);
      compiled.set(key, serialize);
    }
    return serialize;
  };
};
