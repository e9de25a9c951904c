/**
 * PostgreSQL servers of the tests' own (replication, failover, point-in-time recovery): each an
 * `initdb` data directory under a temporary directory, on a port of its own, run with the server
 * binaries of /usr/lib/postgresql/<version>/bin. As root they run as the `postgres` user
 * (`runuser -u postgres --`), since PostgreSQL refuses to run as root.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The newest installed server's bin directory, or null when no PostgreSQL server is installed. */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

/** Why these tests cannot run here, or false. */
export function postgresServerSkip(): string | false {
  if (!postgresBinDir()) return 'no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin';
  if (process.getuid?.() === 0 && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser'))
    return 'running as root without runuser to start PostgreSQL as the postgres user';
  return false;
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const asRoot = () => process.getuid?.() === 0;

function postgresIds(): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  };
}

/** Runs a PostgreSQL program (as the postgres user when this process is root); its standard output. */
export function pgTool(tool: string, args: string[]): string {
  const program = join(postgresBinDir()!, tool);
  const [file, argv] = asRoot() ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args];
  return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

/** A directory the postgres user owns (when root), for data directories, archives and logs. */
export function postgresOwnedDir(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  if (asRoot()) {
    const { uid, gid } = postgresIds();
    chownSync(path, uid, gid);
  }
  return path;
}

export class PgServer {
  constructor(
    /** The data directory. */
    readonly dir: string,
    readonly port: number,
  ) {}

  /** A URL of a database on this server (superuser postgres, trust authentication on 127.0.0.1). */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Appends settings to postgresql.auto.conf (they win over postgresql.conf). */
  configure(settings: Record<string, string | number>): void {
    const lines = Object.entries(settings).map(([k, v]) => `${k} = ${typeof v === 'number' ? v : `'${v.replace(/'/g, "''")}'`}\n`);
    appendFileSync(join(this.dir, 'postgresql.auto.conf'), lines.join(''));
  }

  start(): void {
    pgTool('pg_ctl', ['-D', this.dir, '-l', `${this.dir}.log`, '-w', '-t', '60', 'start']);
  }

  /** `immediate` is a crash as far as the data goes: no checkpoint, the next start recovers from the WAL. */
  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    if (existsSync(join(this.dir, 'postmaster.pid'))) pgTool('pg_ctl', ['-D', this.dir, '-m', mode, '-w', 'stop']);
  }

  /**
   * The postmaster sent SIGQUIT, as `pg_ctl stop -m immediate` does, without blocking this process:
   * the platform's queries in flight meet a server going away. Resolves once it is gone.
   */
  async crash(): Promise<void> {
    const pid = Number(readFileSync(join(this.dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGQUIT');
    const deadline = Date.now() + 30_000;
    while (existsSync(join(this.dir, 'postmaster.pid'))) {
      if (Date.now() > deadline) throw new Error(`PostgreSQL ${pid} did not stop within 30 s of SIGQUIT`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  promote(): void {
    pgTool('pg_ctl', ['-D', this.dir, '-w', '-t', '60', 'promote']);
  }

  sql(query: string, database = 'postgres'): string {
    return pgTool('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', this.url(database), '-c', query]).trim();
  }
}

/** A new server: `initdb` into `dir` (trust authentication, as the test servers use), listening on 127.0.0.1:`port`. */
export function initServer(dir: string, port: number, settings: Record<string, string | number> = {}): PgServer {
  pgTool('initdb', ['-D', dir, '-U', 'postgres', '--auth=trust', '--no-sync', '--no-instructions']);
  const server = new PgServer(dir, port);
  server.configure({ port, listen_addresses: '127.0.0.1', unix_socket_directories: dir, ...settings });
  return server;
}
