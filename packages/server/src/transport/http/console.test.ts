/**
 * The console's file serving, on a bare Fastify app: hashed assets cached for a year, index.html
 * not cached and answered for every console path, the strict CSP and DENY framing, gzip when asked,
 * no listing and no traversal (only names found at start are served), and no build: no routes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { CONSOLE_CSP, consoleRoutes, PERMISSIONS_POLICY } from './console.js';
import { ErrorBodySchema } from './schemas.js';

async function appFor(dir: string | null) {
  const app = Fastify({ logger: false });
  app.addSchema(ErrorBodySchema);
  app.setErrorHandler((error: Error & { status?: number }, _request, reply) =>
    reply
      .status(error.status ?? 500)
      .type('text/plain')
      .send(error.message),
  );
  await app.register(consoleRoutes({ dir }));
  return app;
}

test('serves the build with immutable assets, an uncached index for every console path, a strict CSP and no listing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-console-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title>');
  const script = `console.log(${JSON.stringify('x'.repeat(4000))});`;
  writeFileSync(join(dir, 'assets', 'index-AbC123.js'), script);
  writeFileSync(join(dir, 'secret.txt'), 'not to be served');
  const app = await appFor(dir);
  t.after(() => app.close());

  const asset = await app.inject({ url: '/console/assets/index-AbC123.js' });
  assert.equal(asset.statusCode, 200);
  assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.match(String(asset.headers['content-type']), /^text\/javascript/);
  assert.equal(asset.body, script);
  const zipped = await app.inject({ url: '/console/assets/index-AbC123.js', headers: { 'accept-encoding': 'gzip, br' } });
  assert.equal(zipped.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(zipped.rawPayload).toString(), script);

  for (const url of ['/console', '/console/', '/console/devices/abc', '/console/assets/../secret.txt']) {
    const page = await app.inject({ url });
    assert.equal(page.statusCode, 200, url);
    assert.equal(page.body, '<!doctype html><title>console</title>', url);
    assert.equal(page.headers['cache-control'], 'no-cache');
    assert.equal(page.headers['content-security-policy'], CONSOLE_CSP);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.equal(page.headers['permissions-policy'], PERMISSIONS_POLICY);
  }
  assert.match(PERMISSIONS_POLICY, /camera=\(self\)/);
  assert.match(PERMISSIONS_POLICY, /microphone=\(\)/);
  assert.doesNotMatch(CONSOLE_CSP, /unsafe-inline|unsafe-eval/);
  assert.match(CONSOLE_CSP, /frame-ancestors 'none'/);

  for (const url of [
    '/console/assets/',
    '/console/assets/missing.js',
    '/console/assets/..%2Fsecret.txt',
    '/console/assets/%2e%2e%2fsecret.txt',
  ]) {
    const refused = await app.inject({ url });
    assert.notEqual(refused.body, 'not to be served', url);
    if (url !== '/console/assets/') assert.equal(refused.statusCode, 404, url);
  }
  const root = await app.inject({ url: '/' });
  assert.equal(root.statusCode, 302);
  assert.equal(root.headers.location, '/console/');
});

test("serves the build's precompressed .gz when it is current, compresses a file whose .gz is older, and never serves a .gz by name", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-console-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title>');
  const fresh = `console.log(${JSON.stringify('fresh'.repeat(1000))});`;
  const stale = `console.log(${JSON.stringify('stale'.repeat(1000))});`;
  writeFileSync(join(dir, 'assets', 'fresh-AbC123.js'), fresh);
  // The build's own compression (level 1 here, so it is told apart from the level 9 made at start).
  writeFileSync(join(dir, 'assets', 'fresh-AbC123.js.gz'), gzipSync(fresh, { level: 1 }));
  writeFileSync(join(dir, 'assets', 'stale-AbC123.js'), stale);
  writeFileSync(join(dir, 'assets', 'stale-AbC123.js.gz'), gzipSync('what the file held before'));
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(dir, 'assets', 'stale-AbC123.js.gz'), past, past);
  const app = await appFor(dir);
  t.after(() => app.close());

  const gzip = { 'accept-encoding': 'gzip' };
  const served = await app.inject({ url: '/console/assets/fresh-AbC123.js', headers: gzip });
  assert.equal(served.headers['content-encoding'], 'gzip');
  assert.deepEqual(served.rawPayload, gzipSync(fresh, { level: 1 }), "the build's .gz, not a new compression");
  const recompressed = await app.inject({ url: '/console/assets/stale-AbC123.js', headers: gzip });
  assert.equal(gunzipSync(recompressed.rawPayload).toString(), stale, 'an older .gz is not served for a newer file');
  for (const name of ['fresh-AbC123.js.gz', 'stale-AbC123.js.gz'])
    assert.equal((await app.inject({ url: `/console/assets/${name}` })).statusCode, 404, name);
});

test('without a build the app has no console routes (and starts)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-console-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const app of [await appFor(dir), await appFor(null)]) {
    assert.equal((await app.inject({ url: '/console/' })).statusCode, 404);
    await app.close();
  }
});

test('serves the companion app from app/ at /app/ with the same headers, its own assets, and the mailed links redirect to it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-console-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'assets'));
  mkdirSync(join(dir, 'app', 'assets'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title>');
  writeFileSync(join(dir, 'assets', 'console-1.js'), 'console');
  writeFileSync(join(dir, 'app', 'index.html'), '<!doctype html><title>app</title>');
  writeFileSync(join(dir, 'app', 'assets', 'app-2.js'), 'app');
  const app = await appFor(dir);
  t.after(() => app.close());

  for (const url of ['/app', '/app/', '/app/devices/abc', '/app/sign-up']) {
    const page = await app.inject({ url });
    assert.equal(page.statusCode, 200, url);
    assert.equal(page.body, '<!doctype html><title>app</title>', url);
    assert.equal(page.headers['cache-control'], 'no-cache');
    assert.equal(page.headers['content-security-policy'], CONSOLE_CSP);
    assert.equal(page.headers['x-frame-options'], 'DENY');
  }
  const asset = await app.inject({ url: '/app/assets/app-2.js' });
  assert.equal(asset.body, 'app');
  assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
  // Each face serves its own files only.
  assert.equal((await app.inject({ url: '/app/assets/console-1.js' })).statusCode, 404);
  assert.equal((await app.inject({ url: '/console/assets/app-2.js' })).statusCode, 404);
  assert.equal((await app.inject({ url: '/console/assets/console-1.js' })).body, 'console');
  for (const name of ['verify-email', 'reset-password', 'account/email']) {
    const redirect = await app.inject({ url: `/${name}` });
    assert.equal(redirect.statusCode, 302);
    assert.equal(redirect.headers.location, `/app/${name}`);
  }
});
