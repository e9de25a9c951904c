/**
 * What the HTTP body fuzz test and `bench/fuzz.ts` share: the operations of the OpenAPI document
 * that take a JSON body (less those that would end the fuzzing owner's own session or account),
 * the body arbitrary (any JSON value, or an object of the schema's own field names holding any
 * values), and what a well-formed refusal looks like.
 */
import fc from 'fast-check';

export interface BodyOperation {
  method: string;
  path: string;
  /** The path with every parameter filled with a well-formed ID. */
  url: string;
  fields: string[];
}

/** Routes that would end the owner's own session or account: the fuzz needs both to go on. */
const SPARED = [/\/auth\/logout$/, /^\/api\/v1\/me$/, /\/me\/sessions/, /\/me\/password$/, /\/me\/mfa/];
const SOME_ID = '5f0c2d4e-8a3b-4c1d-9e2f-0a1b2c3d4e5f';

type OpenApi = {
  paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: { properties?: object } }> } }>>;
};

export function bodyOperations(spec: OpenApi): BodyOperation[] {
  const operations: BodyOperation[] = [];
  for (const [path, methods] of Object.entries(spec.paths))
    for (const [method, op] of Object.entries(methods)) {
      const json = op.requestBody?.content?.['application/json'];
      if (!json || SPARED.some((r) => r.test(path))) continue;
      operations.push({
        method: method.toUpperCase(),
        path,
        url: path.replace(/\{[^}]+\}/g, SOME_ID),
        fields: Object.keys(json.schema?.properties ?? {}),
      });
    }
  return operations;
}

/** Any JSON value, or an object with the operation's own field names holding any JSON values. */
export function fuzzBody(op: BodyOperation): fc.Arbitrary<unknown> {
  const shaped = fc.dictionary(fc.constantFrom(...(op.fields.length ? op.fields : ['x'])), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 });
  return fc.oneof(fc.jsonValue({ maxDepth: 4 }), shaped);
}

/** A success, or a refusal with the error body (RFC 6749's {error, error_description} with our code on the OAuth endpoints); never a 5xx. */
export function answeredWell(status: number, body: unknown): boolean {
  if (status >= 500) return false;
  if (status < 400) return true;
  const b = body as { error?: unknown; code?: unknown } | null;
  return (
    typeof (b?.error as { code?: unknown } | undefined)?.code === 'string' || (typeof b?.error === 'string' && typeof b?.code === 'string')
  );
}
