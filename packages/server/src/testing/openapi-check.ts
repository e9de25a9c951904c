/**
 * Keeps the OpenAPI document complete: every answer a test platform gave, as its metrics recorded
 * it (method, route pattern, status), must be declared for that route in the document the node
 * serves at /api/openapi.json. `startTestPlatform` runs the check when the platform closes, so
 * each test file checks the answers its own tests saw, and a file run in parallel with others
 * checks only its own node.
 */
import type { RunningServer } from '../runner/server.js';

interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
}

/** Fastify's route pattern as @fastify/swagger writes it: `:id` is `{id}`, `*` is `{*}`. */
export function openApiPath(route: string): string {
  return route.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*/g, '{*}');
}

/** One line for each answer the document does not declare; empty when it is complete. */
export async function undeclaredAnswers(server: Pick<RunningServer, 'app' | 'metrics'>): Promise<string[]> {
  const document = server.app.swagger() as unknown as OpenApiDocument;
  const problems: string[] = [];
  for (const answer of await server.metrics.answers()) {
    if (answer.route === 'unmatched') continue;
    const path = openApiPath(answer.route);
    const operations = document.paths[path];
    // Fastify answers HEAD on every GET route; the document lists the GET.
    const operation = operations?.[answer.method.toLowerCase()] ?? (answer.method === 'HEAD' ? operations?.get : undefined);
    const status = String(answer.status);
    if (!operation) problems.push(`${answer.method} ${path}: answered ${status}, but the route is not in the document`);
    else if (!(status in operation.responses || `${status[0]}XX` in operation.responses || 'default' in operation.responses)) {
      problems.push(
        `${answer.method} ${path}: answered ${status} (${answer.count}×), which it does not declare (it declares ${Object.keys(operation.responses).join(', ')})`,
      );
    }
  }
  return problems;
}
