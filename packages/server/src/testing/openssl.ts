/**
 * Runs openssl from tests, always asynchronously: a server under test may run in this process and
 * must keep answering while openssl talks to it. Files go to a temporary directory per helper.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpensslResult {
  ok: boolean;
  output: string;
}

export class Openssl {
  readonly dir = mkdtempSync(join(tmpdir(), 'bulwark-openssl-'));

  run(args: string[], input?: string): Promise<OpensslResult> {
    return new Promise((resolve) => {
      const child = execFile('openssl', args, { cwd: this.dir, timeout: 20_000 }, (error, stdout, stderr) =>
        resolve({ ok: !error, output: stdout + stderr }),
      );
      // openssl may exit before reading its input; a closed pipe then is not a failure.
      child.stdin?.on('error', () => undefined);
      if (input === undefined) child.stdin?.end();
      else child.stdin?.end(input);
    });
  }

  /** Like run, but throws with openssl's output when it fails. */
  async must(args: string[]): Promise<string> {
    const result = await this.run(args);
    if (!result.ok) throw new Error(`openssl ${args.join(' ')} failed:\n${result.output}`);
    return result.output;
  }

  write(name: string, content: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }

  read(name: string): string {
    return readFileSync(join(this.dir, name), 'utf8');
  }

  /** A fresh key and CSR made by openssl itself; `keyArgs` picks the algorithm. */
  async csr(name: string, subject: string, keyArgs: string[], extra: string[] = []): Promise<string> {
    await this.must(['req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-subj', subject, ...extra, '-out', `${name}.csr`]);
    return this.read(`${name}.csr`);
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
