/**
 * The `bulwark` command as a platform admin runs it: each command is a real child process
 * (`node --import tsx …/cli/main.ts`) on a temporary data directory (SQLite) or a fresh
 * PostgreSQL database, checked by its exit code, its output and what it leaves on disk.
 * Spawning costs about two seconds of start-up each, so independent commands run side by side.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { cliEnv, cliShellCommand, initializedDataDir, ROOT, SHIPPED_NODE_FLAGS, startCli } from '../testing/cli.js';
import { HttpClient } from '../testing/http.js';
import { eventually } from '../testing/mqtt.js';
import { ENGINES, PG_URL } from '../testing/engines.js';

const OTP_LINE = /One-time password[^:]*: (\S+)/g;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * At most this many CLI processes start at once across the file: start-up (about two seconds of
 * CPU) dominates every command and the machine has two cores, so more would only thrash. Commands
 * that other steps wait for go ahead of independent ones (the --help sweep).
 */
const MAX_STARTING = 3;
let starting = 0;
const queues = { first: [] as (() => void)[], later: [] as (() => void)[] };

async function acquire(priority: keyof typeof queues = 'first'): Promise<() => void> {
  while (starting >= MAX_STARTING) await new Promise<void>((resolve) => queues[priority].push(resolve));
  starting++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    starting--;
    (queues.first.shift() ?? queues.later.shift())?.();
  };
}

async function bulwark(args: string[], env: Record<string, string> = {}, priority: keyof typeof queues = 'first'): Promise<Run> {
  const release = await acquire(priority);
  try {
    return await new Promise<Run>((resolve, reject) => {
      const child = startCli(args, env);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk));
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  } finally {
    release();
  }
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'bulwark-cli-'));
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function run(file: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function getJson(url: string, ca: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      })
      .on('error', reject);
  });
}

/**
 * A running `serve`/`start`: resolves with its URL once it prints the "listening on" line. The MQTT
 * broker takes a free port too, so a broker already on 8883 does not stop it.
 */
async function serving(args: string[]): Promise<{
  child: ChildProcess;
  url: string;
  output: () => string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}> {
  const release = await acquire();
  const child = startCli(args, { BULWARK_MQTT_PORT: '0' });
  let output = '';
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk;
    stderr += chunk;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line within 60 s:\n${output}`)), 60_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk;
      stdout += chunk;
      const match = /Bulwark API listening on (https:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then((code) => reject(new Error(`exited with ${code} before listening:\n${output}`)));
  }).finally(release);
  return { child, url, output: () => output, stdout: () => stdout, stderr: () => stderr, exited };
}

describe('bulwark CLI', { concurrency: true }, () => {
  const dirs: string[] = [];
  const children = new Set<ChildProcess>();
  after(() => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const newDir = () => {
    const dir = tempDir();
    dirs.push(dir);
    return dir;
  };

  describe('on SQLite: init, migrate, admin, audit', { concurrency: 1 }, () => {
    let dataDir: string;
    let firstPassword: string;
    let userPassword: string;

    before(() => {
      dataDir = join(newDir(), 'data');
    });

    it('init creates a private data directory, the master key and the CA, and prints a one-time password once', async () => {
      const first = await bulwark(['init', '--data-dir', dataDir]);
      assert.equal(first.code, 0, first.stderr);
      const passwords = [...first.stdout.matchAll(OTP_LINE)].map((m) => m[1]!);
      assert.equal(passwords.length, 1, first.stdout);
      firstPassword = passwords[0]!;
      assert.ok(firstPassword.length >= 20);
      assert.equal(mode(dataDir), 0o700);
      assert.equal(mode(join(dataDir, 'keys', 'master.key')), 0o600);
      assert.equal(mode(join(dataDir, 'bulwark.db')), 0o600);
      assert.match(readFileSync(join(dataDir, 'pki', 'ca.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----/);

      const again = await bulwark(['init', '--data-dir', dataDir, '--json']);
      assert.equal(again.code, 0, again.stderr);
      const report = JSON.parse(again.stdout);
      assert.equal(report.owner, null);
      assert.deepEqual(report.organization, { slug: 'default', created: false });
      assert.equal(report.masterKeyCreated, false);
      assert.equal(report.pkiCreated, false);
      assert.doesNotMatch(again.stdout + again.stderr, /one-time|oneTimePassword/i);
      assert.ok(!again.stdout.includes(firstPassword));
    });

    it('issues a server certificate that openssl verifies against the CA, for localhost, 127.0.0.1 and ::1', async () => {
      const pki = join(dataDir, 'pki');
      // server.pem is the chain the listener sends: the certificate, then the server issuing CA.
      const verified = await run('openssl', [
        'verify',
        '-CAfile',
        join(pki, 'ca.pem'),
        '-untrusted',
        join(pki, 'server.pem'),
        join(pki, 'server.pem'),
      ]);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.match(verified.stdout, /server\.pem: OK/);
      const san = await run('openssl', ['x509', '-in', join(pki, 'server.pem'), '-noout', '-ext', 'subjectAltName']);
      assert.equal(san.code, 0, san.stderr);
      assert.match(san.stdout, /DNS:localhost\b/);
      assert.match(san.stdout, /IP Address:127\.0\.0\.1\b/);
      assert.match(san.stdout, /IP Address:(0:0:0:0:0:0:0:1|::1)\b/);
    });

    it('migrates, administers accounts and reports unknown users and bad roles with their exit codes', async () => {
      const d = ['--data-dir', dataDir];
      const [migrate, created, badRole, unlock, resetMfa, orgs, outbox] = await Promise.all(
        [
          ['migrate', '--json', ...d],
          ['admin', 'create-user', ...d, '--org', 'default', '--email', 'ops@example.com', '--role', 'operator'],
          ['admin', 'create-user', ...d, '--org', 'default', '--email', 'wiz@example.com', '--role', 'wizard'],
          ['admin', 'unlock', ...d, '--org', 'default', '--email', 'nobody@example.com'],
          ['admin', 'reset-mfa', ...d, '--org', 'default', '--email', 'nobody@example.com'],
          ['admin', 'orgs', '--json', ...d],
          ['admin', 'outbox', '--json', ...d],
        ].map((args) => bulwark(args)),
      );
      assert.equal(migrate!.code, 0, migrate!.stderr);
      assert.deepEqual(JSON.parse(migrate!.stdout), { applied: [], pending: [] });

      assert.equal(created!.code, 0, created!.stderr);
      const passwords = [...created!.stdout.matchAll(OTP_LINE)].map((m) => m[1]!);
      assert.equal(passwords.length, 1, created!.stdout);
      userPassword = passwords[0]!;
      assert.match(created!.stdout, /Created ops@example\.com \(operator\)/);

      assert.equal(badRole!.code, 2, badRole!.stderr);
      assert.match(badRole!.stderr, /--role must be one of owner, admin, operator, release_engineer, auditor/);

      for (const notFound of [unlock!, resetMfa!]) {
        assert.equal(notFound.code, 4, notFound.stderr);
        assert.match(notFound.stderr, /User nobody@example\.com in organization "default" was not found/);
      }

      const organizations = JSON.parse(orgs!.stdout);
      assert.equal(organizations.length, 1);
      assert.equal(organizations[0].slug, 'default');
      assert.equal(organizations[0].name, 'Default organization');
      assert.deepEqual(JSON.parse(outbox!.stdout), []);
    });

    it('creates a metrics scrape token: printed once, only its hash kept in config.json', async () => {
      const created = await bulwark(['admin', 'metrics-token', '--json', '--data-dir', dataDir]);
      assert.equal(created.code, 0, created.stderr);
      const { token } = JSON.parse(created.stdout) as { token: string };
      assert.match(token, /^bwm_[A-Za-z0-9_-]{43}$/);
      const file = join(dataDir, 'config.json');
      const text = readFileSync(file, 'utf8');
      assert.ok(!text.includes(token), 'the token itself is not stored');
      assert.equal(JSON.parse(text).metrics.tokenHash, `sha256:${createHash('sha256').update(token).digest('hex')}`);
      assert.equal(mode(file), 0o600);
    });

    it('verifies and exports the audit log, then exits 3 naming the entry edited behind its back', async () => {
      const d = ['--data-dir', dataDir];
      const out = join(dataDir, 'audit.jsonl');
      const [verified, exported] = await Promise.all([
        bulwark(['audit', 'verify', '--json', ...d]),
        bulwark(['audit', 'export', '--out', out, ...d]),
      ]);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      const report = JSON.parse(verified.stdout);
      assert.equal(report.ok, true);
      assert.ok(report.entries >= 4, verified.stdout);

      assert.equal(exported.code, 0, exported.stderr);
      assert.equal(mode(out), 0o600);
      const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
      const entries = lines.map((line) => JSON.parse(line));
      assert.deepEqual(
        entries.map((e) => e.seq),
        entries.map((_e, i) => i + 1),
      );
      assert.ok(entries.some((e) => e.action === 'user.created' && e.details.email === 'ops@example.com'));
      assert.ok(entries.every((e) => /^[0-9a-f]{64}$/.test(e.hash) && /^[0-9a-f]{64}$/.test(e.prevHash)));
      assert.ok(!lines.join('').includes(firstPassword) && !lines.join('').includes(userPassword), 'passwords never reach the audit log');

      const db = new SQLite(join(dataDir, 'bulwark.db'));
      db.prepare('update audit_log set details = ? where seq = 2').run(
        JSON.stringify({ email: 'someone-else@example.com', role: 'owner' }),
      );
      db.close();
      const tampered = await bulwark(['audit', 'verify', ...d]);
      assert.equal(tampered.code, 3, tampered.stdout + tampered.stderr);
      assert.match(tampered.stdout, /AUDIT LOG TAMPERED/);
      assert.match(tampered.stdout, /entry 2: entry 2 does not match its hash/);
    });
  });

  describe('on SQLite with no node running: the CLI signs what it wrote', { concurrency: 1 }, () => {
    it('checkpoints its audit entries before it exits, so cutting them off is caught by audit verify (exit 3)', async () => {
      const { dir, dataDir } = await initializedDataDir('cli-checkpoint', async () => undefined);
      dirs.push(dir);
      const d = ['--data-dir', dataDir];
      const lastSeq = () => {
        const db = new SQLite(join(dataDir, 'bulwark.db'), { readonly: true });
        try {
          return {
            entry: (db.prepare('select max(seq) as seq from audit_log').get() as { seq: number }).seq,
            checkpoint: (db.prepare('select max(seq) as seq from audit_checkpoints').get() as { seq: number | null }).seq,
          };
        } finally {
          db.close();
        }
      };
      const before = lastSeq();
      const created = await bulwark([
        'admin',
        'create-user',
        ...d,
        '--org',
        'default',
        '--email',
        'insider@example.com',
        '--role',
        'admin',
      ]);
      assert.equal(created.code, 0, created.stderr);
      const after = lastSeq();
      assert.ok(after.entry > before.entry, 'create-user is audited');
      assert.equal(after.checkpoint, after.entry, 'the newest entry is covered by a signed checkpoint');

      // Someone with write access to the database removes the trace of the new admin.
      const db = new SQLite(join(dataDir, 'bulwark.db'));
      db.prepare('delete from audit_log where seq > ?').run(before.entry);
      db.close();
      const verified = await bulwark(['audit', 'verify', '--json', ...d]);
      assert.equal(verified.code, 3, verified.stdout + verified.stderr);
      assert.deepEqual(
        JSON.parse(verified.stdout).problems.map((p: { seq: number; kind: string }) => [p.seq, p.kind]),
        [[after.entry, 'checkpoint_mismatch']],
      );
    });
  });

  describe('serve and start', { concurrency: 1 }, () => {
    it('start on an empty directory initializes, then serves HTTPS that the CA verifies; serve does too; SIGTERM exits 0', async () => {
      const dataDir = join(newDir(), 'data');
      const server = await serving(['start', '--data-dir', dataDir, '--port', '0']);
      children.add(server.child);
      assert.equal([...server.output().matchAll(OTP_LINE)].length, 1, server.output());
      // Standard output: what a person needs, in one piece, and no log line; the logs are JSON lines on standard error.
      const text = server.stdout();
      assert.ok(
        text.split('\n').every((line) => !line.startsWith('{')),
        text,
      );
      assert.ok(text.includes(`CA certificate for clients: ${join(dataDir, 'pki', 'ca.pem')}`), text);
      assert.match(text, /^Next: curl --cacert \S+ https:\/\/\S+\/readyz, then sign in as owner@bulwark\.local/m);
      assert.doesNotMatch(text, /export-root|sealed/);
      const logs = server.stderr().trim().split('\n');
      assert.ok(
        logs.some((line) => /Server listening at/.test(JSON.parse(line).msg)),
        server.stderr(),
      );
      assert.equal(mode(dataDir), 0o700);
      const ca = readFileSync(join(dataDir, 'pki', 'ca.pem'), 'utf8');
      const ready = await getJson(`${server.url}/readyz`, ca);
      assert.deepEqual(ready, { status: 200, body: { status: 'ready', checks: { database: true, broker: true } } });
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0, server.output());

      const again = await serving(['serve', '--data-dir', dataDir, '--port', '0']);
      children.add(again.child);
      assert.doesNotMatch(again.output(), /One-time password/);
      const port = new URL(again.url).port;
      assert.equal((await getJson(`https://localhost:${port}/readyz`, ca)).body.status, 'ready');
      // The console's cookie session through the command as shipped (the CLI's bundle): a sign-in sets
      // the session cookie, and the next request sends it and is answered as that session.
      const browser = new HttpClient(`https://localhost:${port}`, ca, true);
      const oneTimePassword = [...server.output().matchAll(OTP_LINE)][0]![1]!;
      const login = await browser.post('/api/v1/auth/login', {
        organization: 'default',
        email: 'owner@bulwark.local',
        password: oneTimePassword,
        mode: 'cookie',
      });
      assert.equal(login.status, 200, login.text);
      assert.equal(login.body.status, 'password_change_required');
      assert.match(String(login.headers['set-cookie']), /^__Host-/);
      const session = await browser.get('/api/v1/auth/session');
      assert.equal(session.status, 200, session.text);
      assert.equal(session.body.user.email, 'owner@bulwark.local');
      // The password policy as a serving node applies it (its dictionaries in a worker thread):
      // a breached password refused with the reason, a strong one taken.
      const csrf = { headers: { 'x-csrf-token': login.body.csrfToken } };
      const weak = await browser.post('/api/v1/me/password', { currentPassword: oneTimePassword, newPassword: 'password1234' }, csrf);
      assert.equal(weak.status, 400, weak.text);
      assert.equal(weak.body.error.code, 'auth.password_rejected');
      assert.equal(weak.body.error.details.reason, 'breached');
      const changed = await browser.post(
        '/api/v1/me/password',
        { currentPassword: oneTimePassword, newPassword: 'violet tractor umbrella sings at dawn' },
        csrf,
      );
      assert.equal(changed.status, 200, changed.text);
      browser.close();
      again.child.kill('SIGTERM');
      assert.equal(await again.exited, 0, again.output());

      // On a terminal (a pseudo-terminal made by script(1)) the same logs are short human lines.
      const release = await acquire();
      const command = [cliShellCommand(), 'serve', '--data-dir', dataDir, '--port', '0'].join(' ');
      const terminal = spawn('script', ['-qfec', command, '/dev/null'], {
        cwd: ROOT,
        env: cliEnv({ BULWARK_MQTT_PORT: '0' }),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      children.add(terminal);
      let screen = '';
      terminal.stdout.on('data', (chunk: Buffer) => (screen += chunk));
      try {
        await eventually(
          () => /listening on https/.test(screen) && /INFO .*Server listening at/.test(screen),
          60_000,
          'pretty logs on a terminal',
        );
        assert.doesNotMatch(screen, /\{"level"/);
      } finally {
        release();
        terminal.kill('SIGTERM');
      }
    });

    it('start prints the one-time password of a first start even when the node then cannot listen', async () => {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      try {
        const port = (taken.address() as { port: number }).port;
        const result = await bulwark(['start', '--data-dir', join(newDir(), 'data'), '--port', String(port)], { BULWARK_MQTT_PORT: '0' });
        assert.equal(result.code, 1, result.stdout + result.stderr);
        assert.equal([...result.stdout.matchAll(OTP_LINE)].length, 1, result.stdout);
        assert.match(result.stderr, /EADDRINUSE/);
      } finally {
        taken.close();
      }
    });

    it('refuses a bad configuration with exit 2, naming each bad key and its variable', async () => {
      const dataDir = newDir();
      writeFileSync(join(dataDir, 'config.json'), JSON.stringify({ http: { prot: 8443 } }));
      const result = await bulwark(['serve', '--data-dir', dataDir], { BULWARK_HTTP_PORT: 'notaport' });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /Invalid configuration:\n/);
      assert.match(result.stderr, /http\.port \(BULWARK_HTTP_PORT\): must be integer/);
      assert.match(result.stderr, /http\.prot \(BULWARK_HTTP_PROT\): unknown key: remove it or check its spelling/);
      assert.doesNotMatch(result.stderr, /schema is false/);
    });
  });

  describe('usage', () => {
    it('runs with the same V8 flags however it is started: the launcher, npm start, and the tests and benchmarks', () => {
      const shebang = readFileSync(join(ROOT, 'packages/server/bin/bulwark.js'), 'utf8').split('\n')[0]!;
      const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
      const flagsOf = (command: string) => command.split(/\s+/).filter((word) => word.startsWith('--') && word.includes('='));
      assert.deepEqual(flagsOf(shebang), [...SHIPPED_NODE_FLAGS], shebang);
      assert.deepEqual(flagsOf(start), [...SHIPPED_NODE_FLAGS], start);
      assert.ok(shebang.startsWith('#!/usr/bin/env -S node '), shebang);
    });

    it('exits 2 on an unknown command, naming it', async () => {
      const result = await bulwark(['frobnicate']);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /unknown command 'frobnicate'/);
    });

    it('answers --help on every command with exit 0', async () => {
      const commands = [
        [],
        ['init'],
        ['serve'],
        ['start'],
        ['migrate'],
        ['admin'],
        ...['create-org', 'orgs', 'create-user', 'unlock', 'reset-mfa', 'sessions', 'outbox', 'metrics-token'].map((c) => ['admin', c]),
        ['audit'],
        ['audit', 'verify'],
        ['audit', 'export'],
      ];
      const results = await Promise.all(commands.map((command) => bulwark([...command, '--help'], {}, 'later')));
      results.forEach((result, i) => {
        const name = ['bulwark', ...commands[i]!].join(' ');
        assert.equal(result.code, 0, `${name} --help: ${result.stderr}`);
        assert.match(result.stdout, new RegExp(`^Usage: ${name}`), result.stdout);
      });
    });
  });

  const postgres = ENGINES.find((e) => e.engine === 'postgres')!;
  describe('on PostgreSQL (BULWARK_DATABASE_URL naming a schema)', { skip: postgres.skip, concurrency: 1 }, () => {
    const name = `bulwark_cli_${randomBytes(6).toString('hex')}`;
    const server = new pg.Client({ connectionString: PG_URL });
    let database: pg.Client;
    let env: Record<string, string>;

    before(async () => {
      await server.connect();
      await server.query(`create database ${name}`);
      const url = new URL(PG_URL);
      url.pathname = `/${name}`;
      database = new pg.Client({ connectionString: url.href });
      await database.connect();
      // Another deployment's migration bookkeeping in the same database must not be taken for ours.
      await database.query('create schema bulwark; create schema neighbour');
      await database.query('create table neighbour.kysely_migration (name varchar(255) primary key, timestamp varchar(255) not null)');
      await database.query(
        'create table neighbour.kysely_migration_lock (id varchar(255) primary key, is_locked integer not null default 0)',
      );
      url.searchParams.set('options', '-c search_path=bulwark');
      env = { BULWARK_DATABASE_URL: url.href };
    });
    after(async () => {
      await database?.end();
      await server.query(`drop database if exists ${name} with (force)`);
      await server.end();
    });

    it('init migrates the schema named in the URL beside another one; audit verify passes, then catches an edited entry', async () => {
      const dataDir = join(newDir(), 'data');
      const init = await bulwark(['init', '--json', '--data-dir', dataDir], env);
      assert.equal(init.code, 0, init.stderr);
      const report = JSON.parse(init.stdout);
      assert.equal(report.owner.email, 'owner@bulwark.local');
      assert.ok(report.owner.oneTimePassword.length >= 20);
      assert.equal(statSync(join(dataDir, 'bulwark.db'), { throwIfNoEntry: false }), undefined, 'no SQLite file in PostgreSQL mode');
      const tables = await database.query<{ table_schema: string; table_name: string }>(
        `select table_schema, table_name from information_schema.tables where table_schema in ('bulwark', 'neighbour')`,
      );
      const inSchema = (schema: string) =>
        tables.rows
          .filter((r) => r.table_schema === schema)
          .map((r) => r.table_name)
          .sort();
      assert.ok(inSchema('bulwark').includes('audit_log') && inSchema('bulwark').includes('kysely_migration'), JSON.stringify(tables.rows));
      assert.deepEqual(inSchema('neighbour'), ['kysely_migration', 'kysely_migration_lock']);

      const verified = await bulwark(['audit', 'verify', '--data-dir', dataDir], env);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.match(verified.stdout, /Audit log verified: 3 entries/);

      await database.query(`update bulwark.audit_log set action = 'org.renamed' where seq = 1`);
      const tampered = await bulwark(['audit', 'verify', '--json', '--data-dir', dataDir], env);
      assert.equal(tampered.code, 3, tampered.stdout + tampered.stderr);
      const problems = JSON.parse(tampered.stdout).problems;
      assert.deepEqual(
        problems.map((p: { seq: number; kind: string }) => [p.seq, p.kind]),
        [[1, 'hash_mismatch']],
      );
    });
  });
});
