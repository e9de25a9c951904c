import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { ENGINES } from '../../testing/engines.js';
import { ownerSession, startTestPlatform } from '../../testing/server.js';

const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;

describe('structured logs', () => {
  it('never contain passwords, session tokens, cookies or CSRF tokens, even at trace level', async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
    const t = await startTestPlatform(sqlite, {}, stream);
    try {
      const { token, password } = await ownerSession(t);
      await t.client().get('/api/v1/users', { token });
      const cookieClient = t.client(true);
      const login = await cookieClient.post('/api/v1/auth/login', { organization: t.org, email: t.owner.email, password, mode: 'cookie' });
      const cookie = cookieClient.cookies.get('__Host-bulwark_session');
      assert.ok(cookie, 'signed in with a cookie');
      await cookieClient.post('/api/v1/auth/logout', undefined, { headers: { 'x-csrf-token': login.body.csrfToken } });
      await t.client().post('/api/v1/auth/login', { organization: t.org, email: t.owner.email, password: 'wrong password attempt 123' });

      const log = lines.join('\n');
      assert.ok(lines.length > 10, 'the requests were logged');
      assert.ok(
        lines.every((l) => JSON.parse(l)),
        'every line is JSON',
      );
      assert.match(log, /"reqId"/);
      for (const secret of [password, t.owner.oneTimePassword, token, cookie, login.body.csrfToken, 'wrong password attempt 123']) {
        assert.ok(!log.includes(secret), `a secret leaked into the logs: ${secret.slice(0, 6)}…`);
      }
    } finally {
      await t.close();
    }
  });
});
