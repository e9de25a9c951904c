/**
 * The boot variables (boot-backend.ts) in a real bootloader environment, through the bootloader's
 * own tools, so the bootloader reads exactly what the agent wrote:
 *
 * - `grub`: a GRUB environment block (1024 bytes, `/boot/grub/grubenv` on a PC) written with
 *   `grub-editenv FILE set …` (Debian's grub-common); GRUB's `load_env`/`save_env` read and
 *   update it at boot (docs/device-sdk.md has the grub.cfg snippet).
 * - `uboot`: a U-Boot environment written with `fw_setenv -c CONFIG -s SCRIPT` (Debian's
 *   libubootenv-tool), all variables in one write; CONFIG is an fw_env.config naming the
 *   environment's device or file, offset and size (two lines: a redundant environment, which
 *   libubootenv switches atomically). At setup an environment that is not valid yet is created
 *   with no defaults; later, an unreadable environment is an error, never silently replaced.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BootBackend, BootBackendError, DirBootBackend, type BootBackendSettings } from './boot-backend.js';

/** Runs a bootloader tool; its failure (exit status, missing binary) becomes a BootBackendError with its stderr. */
function tool(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    throw new BootBackendError(`${command} ${args.join(' ')} failed: ${stderr?.trim() || message}`);
  }
}

/** `name=value` lines (what grub-editenv list and fw_printenv print) as an object; null without bulwark_active. */
function parseEnv(text: string): Record<string, string> | null {
  const variables: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) variables[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return 'bulwark_active' in variables ? variables : null;
}

export class GrubBootBackend extends BootBackend {
  readonly settings: BootBackendSettings;

  constructor(private readonly envFile: string) {
    super();
    this.settings = { kind: 'grub', envFile };
  }

  protected load(): Record<string, string> | null {
    return existsSync(this.envFile) ? parseEnv(tool('grub-editenv', [this.envFile, 'list'])) : null;
  }

  protected store(variables: Record<string, string>): void {
    if (!existsSync(this.envFile)) tool('grub-editenv', [this.envFile, 'create']);
    tool('grub-editenv', [this.envFile, 'set', ...Object.entries(variables).map(([name, value]) => `${name}=${value}`)]);
  }
}

export class UBootBootBackend extends BootBackend {
  readonly settings: BootBackendSettings;

  /** `scratchDir` holds the script fw_setenv reads (the agent's state directory). */
  constructor(
    private readonly config: string,
    private readonly scratchDir: string,
  ) {
    super();
    this.settings = { kind: 'uboot', config };
  }

  protected load(): Record<string, string> | null {
    return parseEnv(tool('fw_printenv', ['-c', this.config]));
  }

  protected store(variables: Record<string, string>): void {
    this.setenv(variables, []);
  }

  /** At setup the environment may not be valid yet (a blank one): it is created, with no default variables. */
  override provision(): void {
    try {
      this.load();
    } catch {
      this.setenv({}, ['-f', '/dev/null']);
    }
    super.provision();
  }

  private setenv(variables: Record<string, string>, options: string[]): void {
    const script = join(this.scratchDir, `fw_setenv-${process.pid}.script`);
    writeFileSync(
      script,
      Object.entries(variables)
        .map(([name, value]) => `${name}=${value}\n`)
        .join(''),
    );
    try {
      tool('fw_setenv', ['-c', this.config, ...options, '-s', script]);
    } finally {
      rmSync(script, { force: true });
    }
  }
}

/** The backend a state directory's settings name. */
export function openBootBackend(stateDir: string, settings: BootBackendSettings): BootBackend {
  if (settings.kind === 'grub') return new GrubBootBackend(settings.envFile);
  if (settings.kind === 'uboot') return new UBootBootBackend(settings.config, stateDir);
  return new DirBootBackend(stateDir);
}
