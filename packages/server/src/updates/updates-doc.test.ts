/**
 * docs/updates.md as a newcomer follows it: its `sh ceremony` blocks, taken from the page as they
 * are, run in order as one bash script in an empty directory against a real server (with `bulwark`
 * on PATH, curl, jq and openssl), answering its prompts (password, TOTP code, key passphrase) on
 * standard input. Then a TUF client (tuf-js) that trusts only the root the ceremony made downloads
 * and verifies the released image. If the page drifts from the code, this fails. The README's
 * firmware commands must be among the page's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Updater } from 'tuf-js';
import { targetNameOf, tufMetadataPath, tufTargetsPath } from '@bulwark/protocol';
import { cliEnv, cliShellCommand, ROOT } from '../testing/cli.js';
import { ENGINES } from '../testing/engines.js';
import { ownerSession, startTestPlatform, totp, type TestPlatform } from '../testing/server.js';
import { CaTrustingFetcher } from '../testing/tuf-fetcher.js';

const DOC = join(ROOT, 'docs/updates.md');
const KEY_PASSPHRASE = 'release engineer passphrase 7';
/** The whole page runs about ten `bulwark` processes and three 600,000-iteration key derivations per key. */
const SCRIPT_TIMEOUT_MS = 12 * 60_000;

interface Block {
  info: string;
  line: number;
  body: string;
}

/** The fenced code blocks of a markdown file, with their info string and first line. */
function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
  for (let match = fence.exec(markdown); match; match = fence.exec(markdown)) {
    blocks.push({ info: match[1]!.trim(), line: markdown.slice(0, match.index).split('\n').length, body: match[2]! });
  }
  return blocks;
}

/** Shell commands of a block: continuation lines joined, comments and extra spaces dropped. */
function commandsOf(body: string): string[] {
  return body
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) =>
      line
        .replace(/(^|\s+)#.*$/, '')
        .replace(/\s+/g, ' ')
        .trim(),
    )
    .filter(Boolean);
}

/** Runs a bash script in `cwd`, feeding `input`; kills its process group if it outlasts the timeout. */
function runScript(path: string, cwd: string, env: NodeJS.ProcessEnv, input: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), SCRIPT_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

describe('docs/updates.md: the ceremony and a first release, run as written', () => {
  const markdown = readFileSync(DOC, 'utf8');
  const blocks = fencedBlocks(markdown);
  const ceremony = blocks.filter((b) => b.info === 'sh ceremony');
  const sqlite = ENGINES.find((e) => e.engine === 'sqlite')!;
  let t: TestPlatform;
  let base: string;

  before(async () => {
    t = await startTestPlatform(sqlite);
    base = mkdtempSync(join(tmpdir(), 'bulwark-updates-doc-'));
  });
  after(async () => {
    await t?.close();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('takes an empty directory to a published release and a rollout, which a TUF client trusting the new root downloads and verifies', async () => {
    assert.ok(ceremony.length >= 8, `docs/updates.md has ${ceremony.length} sh ceremony blocks`);
    const owner = await ownerSession(t);
    writeFileSync(join(base, 'ca.pem'), t.ca);
    // What the page's "tell the commands where your deployment is" block sets, with this server's values.
    const inputs = {
      BULWARK_URL: `https://localhost:${t.server.port}`,
      BULWARK_CA: join(base, 'ca.pem'),
      BULWARK_ORG: t.org,
      BULWARK_EMAIL: t.owner.email,
    };
    const inputBlock = blocks.find((b) => b.info === 'sh' && b.body.includes('export BULWARK_URL='));
    assert.deepEqual(
      [...inputBlock!.body.matchAll(/^export (\w+)=/gm)].map((m) => m[1]).sort(),
      Object.keys(inputs).sort(),
      'the page asks for exactly these inputs',
    );

    // `bulwark` on PATH, as node_modules/.bin/bulwark puts it there.
    const bin = join(base, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'bulwark'), `#!/bin/sh\nexec ${cliShellCommand()} "$@"\n`);
    chmodSync(join(bin, 'bulwark'), 0o755);

    const work = join(base, 'firmware-ceremony');
    mkdirSync(work);
    const script = ['set -euo pipefail', ...ceremony.map((b) => `echo '### docs/updates.md line ${b.line}' >&2\n${b.body}`)].join('\n');
    writeFileSync(join(base, 'ceremony.sh'), script);
    const answers = [owner.password, await totp(owner.secret, t.clock), KEY_PASSPHRASE].join('\n') + '\n';
    const env = cliEnv({ ...inputs, PATH: `${bin}:${process.env.PATH}`, HOME: base });
    const run = await runScript(join(base, 'ceremony.sh'), work, env, answers);
    assert.equal(run.code, 0, `the page's commands failed (the last "###" line is the block):\n${run.output}`);
    for (const secret of [owner.password, KEY_PASSPHRASE]) assert.ok(!run.output.includes(secret), 'no secret is printed');

    const json = (name: string) => JSON.parse(readFileSync(join(work, name), 'utf8'));
    const release = json('release.json');
    const orgId = json('online.json').organizationId as string;
    assert.equal(release.version, '1.4.0');

    // A device's view: trust only the root the ceremony made, refresh, download, verify.
    const client = join(base, 'client');
    mkdirSync(join(client, 'targets'), { recursive: true });
    writeFileSync(join(client, 'root.json'), readFileSync(join(work, 'ceremony/root.json')));
    const url = inputs.BULWARK_URL;
    const updater = new Updater({
      metadataDir: client,
      metadataBaseUrl: url + tufMetadataPath(orgId),
      targetDir: join(client, 'targets'),
      targetBaseUrl: url + tufTargetsPath(orgId),
      fetcher: new CaTrustingFetcher(t.ca),
    });
    await updater.refresh();
    const target = await updater.getTargetInfo(targetNameOf(release.productId, '1.4.0'));
    assert.ok(target, 'the released image is in the verified targets');
    assert.equal(target.hashes.sha256, release.sha256);
    const downloaded = await updater.downloadTarget(target, join(client, 'targets', 'fw.bin'));
    assert.deepEqual(readFileSync(downloaded), readFileSync(join(work, 'fw.bin')));

    const api = t.client();
    const rollout = await api.get(`/api/v1/updates/rollouts/${json('rollout.json').id}`, { token: owner.token });
    assert.deepEqual([rollout.body.status, rollout.body.deviceCount, rollout.body.releaseId], ['running', 1, release.id], rollout.text);
    const keys = await api.get('/api/v1/me/api-keys', { token: owner.token });
    assert.deepEqual(
      keys.body.apiKeys.map((k: { name: string; revoked: boolean }) => [k.name, k.revoked]),
      [['firmware ceremony', true]],
      'the page retires the API key it made',
    );
  });

  it("the README's firmware commands are the page's", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Firmware updates'));
    const snippet = fencedBlocks(section)[0]!;
    const documented = new Set(ceremony.flatMap((b) => commandsOf(b.body)));
    const commands = commandsOf(snippet.body).filter((c) => c.startsWith('bulwark firmware'));
    assert.ok(commands.length >= 5, 'the README shows the firmware commands');
    for (const command of commands) assert.ok(documented.has(command), `README.md runs "${command}", which docs/updates.md does not`);
  });
});
