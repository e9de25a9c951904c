import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../errors.js';
import { loadConfig, workerCount } from './config.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-config-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('configuration', () => {
  it('starts from secure defaults: SQLite, loopback, HTTPS port 8443', () => {
    withDir((dir) => {
      const config = loadConfig({ dataDir: dir, env: {} });
      assert.equal(config.database.url, 'sqlite');
      assert.equal(config.http.host, '127.0.0.1');
      assert.equal(config.http.port, 8443);
      assert.equal(config.http.trustProxy, false);
    });
  });

  it('reads BULWARK_* variables named after the key, converting types', () => {
    withDir((dir) => {
      const config = loadConfig({
        dataDir: dir,
        env: {
          BULWARK_HTTP_PORT: '9443',
          BULWARK_SESSIONS_IDLE_TIMEOUT_MINUTES: '5',
          BULWARK_HTTP_SERVER_NAMES: 'iot.example.com, api.example.com',
          BULWARK_HTTP_TRUST_PROXY: 'true',
        },
      });
      assert.equal(config.http.port, 9443);
      assert.equal(config.sessions.idleTimeoutMinutes, 5);
      assert.deepEqual(config.http.serverNames, ['iot.example.com', 'api.example.com']);
      assert.equal(config.http.trustProxy, true);
    });
  });

  it('lets the environment override the config file, and the command line override both', () => {
    withDir((dir) => {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ http: { port: 7000, host: '0.0.0.0' } }));
      const config = loadConfig({ dataDir: dir, env: { BULWARK_HTTP_PORT: '7001' }, overrides: { http: { host: '::1' } } });
      assert.equal(config.http.port, 7001);
      assert.equal(config.http.host, '::1');
    });
  });

  it('names the bad key, its variable and what is expected', () => {
    withDir((dir) => {
      assert.throws(
        () => loadConfig({ dataDir: dir, env: { BULWARK_HTTP_PORT: 'eighty' } }),
        (error: unknown) =>
          error instanceof ValidationError && error.code === 'config.invalid' && /http\.port \(BULWARK_HTTP_PORT\)/.test(error.message),
      );
      assert.throws(
        () => loadConfig({ dataDir: dir, env: { BULWARK_DATABASE_URL: 'mysql://db' } }),
        /database\.url \(BULWARK_DATABASE_URL\)/,
      );
    });
  });

  it('takes node.workers as a number or auto, from the file or BULWARK_NODE_WORKERS; auto is one per core', () => {
    withDir((dir) => {
      const shared = { BULWARK_DATABASE_URL: 'postgres://bulwark@db/bulwark', BULWARK_MQTT_REDIS_URL: 'redis://127.0.0.1:6379/0' };
      assert.equal(loadConfig({ dataDir: dir, env: {} }).node.workers, 1);
      assert.equal(loadConfig({ dataDir: dir, env: { ...shared, BULWARK_NODE_WORKERS: '3' } }).node.workers, 3);
      const auto = loadConfig({ dataDir: dir, env: { ...shared, BULWARK_NODE_WORKERS: 'auto' } });
      assert.equal(auto.node.workers, 'auto');
      assert.equal(workerCount(auto, 16), 16);
      assert.equal(workerCount(auto, 0), 1);
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ node: { workers: 2 }, mqtt: { enabled: false } }));
      assert.equal(loadConfig({ dataDir: dir, env: { BULWARK_DATABASE_URL: shared.BULWARK_DATABASE_URL } }).node.workers, 2);
    });
  });

  it('refuses several workers on SQLite, or on PostgreSQL without Redis for the broker, naming what to set', () => {
    withDir((dir) => {
      const refused = (env: NodeJS.ProcessEnv, pattern: RegExp) =>
        assert.throws(
          () => loadConfig({ dataDir: dir, env }),
          (error: unknown) =>
            error instanceof ValidationError && error.code === 'config.workers_need_shared_state' && pattern.test(error.message),
        );
      refused({ BULWARK_NODE_WORKERS: '2' }, /database\.url \(BULWARK_DATABASE_URL\): SQLite/);
      refused({ BULWARK_NODE_WORKERS: 'auto' }, /node\.workers \(BULWARK_NODE_WORKERS\) is auto/);
      refused(
        { BULWARK_NODE_WORKERS: '2', BULWARK_DATABASE_URL: 'postgres://bulwark@db/bulwark' },
        /mqtt\.redisUrl \(BULWARK_MQTT_REDIS_URL\)/,
      );
      for (const bad of ['0', 'abc', '2.5', '257'])
        assert.throws(
          () => loadConfig({ dataDir: dir, env: { BULWARK_NODE_WORKERS: bad } }),
          /node\.workers \(BULWARK_NODE_WORKERS\): must be a whole number from 1 to 256, or auto \(one per core\)$/m,
        );
    });
  });

  it('refuses unknown keys in the config file instead of ignoring a typo', () => {
    withDir((dir) => {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ http: { prot: 1 } }));
      assert.throws(() => loadConfig({ dataDir: dir, env: {} }), /http\.prot \(BULWARK_HTTP_PROT\): unknown key/);
    });
  });

  it('reports a config file that is not JSON', () => {
    withDir((dir) => {
      writeFileSync(join(dir, 'config.json'), '{ port: 1 ');
      assert.throws(() => loadConfig({ dataDir: dir, env: {} }), /config\.json is not valid JSON/);
    });
  });
});
