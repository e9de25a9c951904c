import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../ops/config.js';
import { SecretBox, SoftwareKek } from './custody.js';
import { openConfigSecret, rewrapConfigFile, storeConfigSecret } from './sealed-config.js';

describe('secrets in the configuration file', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'bulwark-config-secret-'));

  it('stores the SMTP password sealed: the file never holds it, and the master key opens it', () => {
    const dataDir = dir();
    try {
      writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ smtp: { host: 'smtp.example.com', user: 'bulwark' } }));
      const box = new SecretBox(randomBytes(32));
      storeConfigSecret(dataDir, box, 'smtp.password', 'hunter2-smtp-secret');
      const text = readFileSync(join(dataDir, 'config.json'), 'utf8');
      assert.doesNotMatch(text, /hunter2/);
      const config = loadConfig({ dataDir, env: {} });
      assert.equal(config.smtp.host, 'smtp.example.com');
      assert.match(config.smtp.password!, /^sealed:v2\./);
      assert.equal(openConfigSecret(box, 'smtp.password', config.smtp.password!), 'hunter2-smtp-secret');
      // Another master key does not open it.
      assert.throws(
        () => openConfigSecret(new SecretBox(randomBytes(32)), 'smtp.password', config.smtp.password!),
        /master key|authentication/,
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses a plain-text SMTP password in config.json, and accepts one from the environment', () => {
    const dataDir = dir();
    try {
      writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ smtp: { host: 'smtp.example.com', password: 'plain' } }));
      assert.throws(() => loadConfig({ dataDir, env: {} }), /plain text[\s\S]*bulwark admin smtp-password/);
      writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ smtp: { host: 'smtp.example.com' } }));
      const config = loadConfig({ dataDir, env: { BULWARK_SMTP_PASSWORD: 'from-env' } });
      assert.equal(openConfigSecret(new SecretBox(randomBytes(32)), 'smtp.password', config.smtp.password!), 'from-env');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('re-wraps the sealed secret under a new master key (rotate-master) and keeps the rest of the file', () => {
    const dataDir = dir();
    try {
      writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ http: { port: 9443 } }));
      const oldKey = randomBytes(32);
      const newKey = randomBytes(32);
      storeConfigSecret(dataDir, new SecretBox(oldKey), 'smtp.password', 'rotate-me');
      const ring = { stamp: () => 'fixed', load: () => [new SoftwareKek(newKey), new SoftwareKek(oldKey)] };
      const box = new SecretBox(ring);
      assert.equal(rewrapConfigFile(dataDir, box), 1);
      assert.equal(rewrapConfigFile(dataDir, box), 0);
      const config = loadConfig({ dataDir, env: {} });
      assert.equal(config.http.port, 9443);
      assert.equal(openConfigSecret(new SecretBox(newKey), 'smtp.password', config.smtp.password!), 'rotate-me');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
