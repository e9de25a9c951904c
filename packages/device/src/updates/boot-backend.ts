/**
 * Where the A/B boot variables live: what the bootloader reads at power-on to choose a slot. The
 * agent keeps three, the same in every backend:
 *
 *   bulwark_active   a | b   the committed slot, booted normally
 *   bulwark_trial    a | b | (empty)   a slot to try once
 *   bulwark_tried    0 | 1   the one try has started (set by the bootloader as it boots the trial)
 *
 * A bootloader boots `bulwark_trial` when it is set and `bulwark_tried` is 0 (setting it to 1
 * first), and `bulwark_active` otherwise; only the agent, after the health check, commits or
 * rolls back. Every change writes all three at once, in one write of the backend. Backends: `dir`
 * (a JSON file in the state directory, for simulated devices and tests), `grub` (a GRUB
 * environment block written by grub-editenv) and `uboot` (a U-Boot environment written by
 * libubootenv's fw_setenv, its location in an fw_env.config file): boot-env.ts.
 */
import { join } from 'node:path';
import { readJson, writeJsonDurably } from './durable.js';

export type SlotName = 'a' | 'b';

export const otherSlot = (slot: SlotName): SlotName => (slot === 'a' ? 'b' : 'a');

export interface BootVariables {
  active: SlotName;
  trial: SlotName | null;
  tried: boolean;
}

export const BOOT_BACKENDS = ['dir', 'grub', 'uboot'] as const;
export type BootBackendKind = (typeof BOOT_BACKENDS)[number];

/** How a state directory's boot variables are kept: chosen at setup, recorded in `boot-backend.json`. */
export type BootBackendSettings = { kind: 'dir' } | { kind: 'grub'; envFile: string } | { kind: 'uboot'; config: string };

/** The boot variables cannot be read or written (a missing tool, a corrupt environment). */
export class BootBackendError extends Error {}

export abstract class BootBackend {
  abstract readonly settings: BootBackendSettings;

  /** The variables as stored (null when none are: a device never set up). */
  protected abstract load(): Record<string, string> | null;

  /** Writes all three variables in one write. */
  protected abstract store(variables: Record<string, string>): void;

  read(): BootVariables {
    const stored = this.load();
    if (!stored)
      throw new BootBackendError(`No boot variables in the ${this.settings.kind} backend: set the device up first (bulwark-agent setup)`);
    const slot = (value: string | undefined): SlotName | null => (value === 'a' || value === 'b' ? value : null);
    const active = slot(stored.bulwark_active);
    const trial = stored.bulwark_trial ? slot(stored.bulwark_trial) : null;
    const tried = stored.bulwark_tried ?? '0';
    if (!active || (stored.bulwark_trial && !trial) || (tried !== '0' && tried !== '1')) {
      throw new BootBackendError(`The ${this.settings.kind} boot variables are not valid: ${JSON.stringify(stored)}`);
    }
    return { active, trial, tried: tried === '1' };
  }

  /** Factory state: slot a active, nothing to try. */
  provision(): void {
    this.write({ active: 'a', trial: null, tried: false });
  }

  /** Arms one trial boot of `slot` (the inactive one). */
  armTrial(slot: SlotName): void {
    const { active } = this.read();
    if (slot === active) throw new BootBackendError(`Slot ${slot} is the active slot; a trial runs in the inactive one`);
    this.write({ active, trial: slot, tried: false });
  }

  /** The bootloader's part as the trial boot starts: its one try is used up. */
  startTrial(): void {
    this.write({ ...this.read(), tried: true });
  }

  /** The trial passed: its slot becomes the active one, nothing is left to try. */
  commit(): void {
    const { trial } = this.read();
    if (!trial) throw new BootBackendError('There is no trial to commit');
    this.write({ active: trial, trial: null, tried: false });
  }

  /** The trial ends without a commit: the active slot stays, nothing is left to try. */
  rollback(): void {
    this.write({ active: this.read().active, trial: null, tried: false });
  }

  private write(variables: BootVariables): void {
    this.store({ bulwark_active: variables.active, bulwark_trial: variables.trial ?? '', bulwark_tried: variables.tried ? '1' : '0' });
  }
}

/** The variables in `<state>/bootenv.json`, replaced atomically (durable.ts). */
export class DirBootBackend extends BootBackend {
  readonly settings = { kind: 'dir' } as const;

  constructor(private readonly stateDir: string) {
    super();
  }

  private get path(): string {
    return join(this.stateDir, 'bootenv.json');
  }

  protected load(): Record<string, string> | null {
    return readJson<Record<string, string> | null>(this.path, null) ?? this.fromOldBootFile();
  }

  protected store(variables: Record<string, string>): void {
    writeJsonDurably(this.path, variables);
  }

  /** A state directory set up before the backends kept the variables in boot.json (`active`, `trial.slot`, `trial.attempts`). */
  private fromOldBootFile(): Record<string, string> | null {
    const old = readJson<{ active?: string; trial?: { slot?: string; attempts?: number } | null } | null>(
      join(this.stateDir, 'boot.json'),
      null,
    );
    if (!old?.active) return null;
    const variables = {
      bulwark_active: old.active,
      bulwark_trial: old.trial?.slot ?? '',
      bulwark_tried: (old.trial?.attempts ?? 0) > 0 ? '1' : '0',
    };
    this.store(variables);
    return variables;
  }
}

const settingsPath = (stateDir: string): string => join(stateDir, 'boot-backend.json');

/** Records the backend chosen at setup. */
export function recordBootBackend(stateDir: string, settings: BootBackendSettings): void {
  writeJsonDurably(settingsPath(stateDir), settings);
}

/** The backend recorded at setup (`dir` for a state directory set up before backends existed). */
export function recordedBootBackend(stateDir: string): BootBackendSettings {
  return readJson<BootBackendSettings>(settingsPath(stateDir), { kind: 'dir' });
}
