/**
 * The A/B slots on disk and the boot decision, as a bootloader would keep them:
 *
 *   <state>/slots/a/image.bin, manifest.json   (and image.partial while downloading)
 *   <state>/slots/b/…
 *   the boot variables   which slot is active, which to try once, whether its try has started:
 *                        in the backend chosen at setup (boot-backend.ts: dir, grub or uboot)
 *   <state>/boot.json    the agent's record of the trial the variables arm,
 *                        { trial: null | { slot, target, version, securityVersion, rolloutId, error? },
 *                          committed?: { rolloutId, target, slot } }
 *   <state>/rollback-counter   the committed anti-rollback counter (decimal)
 *
 * Every file is replaced atomically (durable.ts), each backend's variables in one write. A slot is
 * bootable only while its manifest exists and its image hashes to the manifest's SHA-256;
 * installing removes the manifest first, so a power cut mid-install leaves the slot unbootable
 * rather than half-written and trusted. The trial protocol: a new image boots once (its try is
 * marked used in the boot variables before it runs); only a passed health check commits it; any
 * boot that finds the try used and no commit rolls back to the old slot. The agent's record is
 * written before the variables it explains: the trial before it is armed, and, before the commit,
 * a note that its success is still to be reported; the note counts only if the variables show the
 * commit happened, so a power cut on either side of the commit ends in exactly one `succeeded` or
 * in a rollback.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BootBackend, recordedBootBackend, type SlotName } from './boot-backend.js';
import { openBootBackend } from './boot-env.js';
import { fsyncDir, readJson, writeDurably, writeJsonDurably } from './durable.js';

export { otherSlot, type SlotName } from './boot-backend.js';

export interface SlotManifest {
  target: string;
  version: string;
  sha256: string;
  length: number;
  securityVersion: number;
}

/** The agent's record of an armed trial (what it reports about it). */
export interface TrialRecord {
  slot: SlotName;
  target: string;
  version: string;
  securityVersion: number;
  rolloutId: string;
  /** Why the trial boot failed, when it knows (a crash leaves none). */
  error?: { code: string; message: string };
}

export interface Trial extends TrialRecord {
  /** Boots of it started: 0 armed, 1 its one try is used. */
  attempts: number;
}

/** A commit whose `succeeded` status has not been sent yet. */
export interface CommittedNote {
  rolloutId: string;
  target: string;
  slot: SlotName;
}

interface BootRecord {
  trial: TrialRecord | null;
  committed?: CommittedNote;
}

/** The boot variables and the agent's record, together. */
export interface BootState {
  active: SlotName;
  trial: Trial | null;
  committed?: CommittedNote;
}

export type BootDecision =
  | { kind: 'normal'; slot: SlotName }
  /** Booting the new image for its one trial: run the health check, then commit or fail. */
  | { kind: 'trial'; slot: SlotName; trial: Trial }
  /** The trial never committed: the old slot runs again. */
  | { kind: 'rolled_back'; slot: SlotName; trial: Trial };

export class Slots {
  /** The boot variables' backend: the one recorded at setup unless given. */
  readonly backend: BootBackend;

  constructor(
    readonly stateDir: string,
    backend?: BootBackend,
  ) {
    this.backend = backend ?? openBootBackend(stateDir, recordedBootBackend(stateDir));
  }

  dir(slot: SlotName): string {
    return join(this.stateDir, 'slots', slot);
  }

  imagePath(slot: SlotName): string {
    return join(this.dir(slot), 'image.bin');
  }

  partialPath(slot: SlotName): string {
    return join(this.dir(slot), 'image.partial');
  }

  private manifestPath(slot: SlotName): string {
    return join(this.dir(slot), 'manifest.json');
  }

  private get bootPath(): string {
    return join(this.stateDir, 'boot.json');
  }

  private get counterPath(): string {
    return join(this.stateDir, 'rollback-counter');
  }

  /** Factory provisioning: the first image in slot a, active, counter at its securityVersion. */
  provision(image: Buffer, manifest: Omit<SlotManifest, 'sha256' | 'length'>): SlotManifest {
    for (const slot of ['a', 'b'] as const) mkdirSync(this.dir(slot), { recursive: true });
    const full = { ...manifest, sha256: createHash('sha256').update(image).digest('hex'), length: image.length };
    writeDurably(this.imagePath('a'), image);
    writeJsonDurably(this.manifestPath('a'), full);
    writeDurably(this.counterPath, `${manifest.securityVersion}\n`);
    this.writeRecord({ trial: null });
    this.backend.provision();
    return full;
  }

  /** The boot variables with the agent's record of the trial they arm. */
  readBoot(): BootState {
    const variables = this.backend.read();
    const record = this.readRecord();
    const trial = variables.trial && record.trial?.slot === variables.trial ? { ...record.trial, attempts: variables.tried ? 1 : 0 } : null;
    return { active: variables.active, trial, ...(record.committed ? { committed: record.committed } : {}) };
  }

  private readRecord(): BootRecord {
    if (!existsSync(this.bootPath)) throw new Error(`${this.bootPath} does not exist: provision the device first (bulwark-agent setup)`);
    // A boot.json from before the backends also held `active`, and its commit note no slot (the active one).
    const record = JSON.parse(readFileSync(this.bootPath, 'utf8')) as BootRecord & {
      active?: SlotName;
      committed?: Partial<CommittedNote>;
    };
    const slot = record.committed?.slot ?? record.active;
    return {
      trial: record.trial ?? null,
      ...(record.committed && slot ? { committed: { ...(record.committed as CommittedNote), slot } } : {}),
    };
  }

  private writeRecord(record: BootRecord): void {
    writeJsonDurably(this.bootPath, record);
  }

  counter(): number {
    return existsSync(this.counterPath) ? Number.parseInt(readFileSync(this.counterPath, 'utf8'), 10) : 0;
  }

  private raiseCounter(to: number): void {
    if (to > this.counter()) writeDurably(this.counterPath, `${to}\n`);
  }

  manifest(slot: SlotName): SlotManifest | null {
    return readJson<SlotManifest | null>(this.manifestPath(slot), null);
  }

  /** Whether the slot holds a complete image matching its manifest. */
  async verify(slot: SlotName): Promise<boolean> {
    const manifest = this.manifest(slot);
    if (!manifest || !existsSync(this.imagePath(slot))) return false;
    return (await sha256OfFile(this.imagePath(slot))) === manifest.sha256;
  }

  /**
   * The boot decision, run at every start. `booted` is the slot a real bootloader booted (from the
   * kernel command line's `bulwark.slot=`), having marked the trial tried itself; without it the
   * agent plays the bootloader (simulated devices, tests) and marks the try used before the new
   * image runs. Either way a trial gets exactly one boot, so a crash anywhere in it ends in a rollback.
   */
  async boot(booted: SlotName | null = null): Promise<BootDecision> {
    const variables = this.backend.read();
    const record = this.readRecord();
    // A commit is one write of the boot variables; the counter follows it, and is caught up here if a power cut fell between.
    this.raiseCounter(this.manifest(variables.active)?.securityVersion ?? 0);
    if (!variables.trial) {
      // Settles the record: a commit note counts only if the commit reached the variables; a trial they never armed is forgotten.
      const committed = record.committed?.slot === variables.active ? record.committed : undefined;
      if (record.trial || record.committed !== committed) this.writeRecord({ trial: null, ...(committed ? { committed } : {}) });
      return { kind: 'normal', slot: variables.active };
    }
    const armed = record.trial?.slot === variables.trial ? record.trial : null;
    const trialBoot = booted === null ? !variables.tried : variables.tried && booted === variables.trial;
    if (armed && trialBoot && (await this.verify(armed.slot))) {
      if (booted === null) this.backend.startTrial();
      return { kind: 'trial', slot: armed.slot, trial: { ...armed, attempts: 1 } };
    }
    this.backend.rollback();
    this.writeRecord({ trial: null });
    if (!armed) return { kind: 'normal', slot: variables.active };
    return { kind: 'rolled_back', slot: variables.active, trial: { ...armed, attempts: variables.tried ? 1 : 0 } };
  }

  /** Removes the slot's manifest (the slot is no longer bootable) before its image is replaced. */
  invalidate(slot: SlotName): void {
    mkdirSync(this.dir(slot), { recursive: true });
    if (existsSync(this.manifestPath(slot))) {
      rmSync(this.manifestPath(slot));
      fsyncDir(this.dir(slot));
    }
  }

  /** Moves a verified download into the slot, then writes its manifest (which makes it bootable). */
  install(slot: SlotName, manifest: SlotManifest, between?: () => void): void {
    this.invalidate(slot);
    renameSync(this.partialPath(slot), this.imagePath(slot));
    fsyncDir(this.dir(slot));
    between?.();
    writeJsonDurably(this.manifestPath(slot), manifest);
  }

  /** Arms the one trial boot of `slot`. */
  setTrial(trial: TrialRecord): void {
    if (trial.slot === this.backend.read().active)
      throw new Error(`Slot ${trial.slot} is the active slot; a trial runs in the inactive one`);
    this.writeRecord({ ...this.readRecord(), trial });
    this.backend.armTrial(trial.slot);
  }

  /** Records why the running trial failed (it is rolled back at the next boot). */
  failTrial(error: { code: string; message: string }): void {
    const record = this.readRecord();
    if (record.trial) this.writeRecord({ ...record, trial: { ...record.trial, error } });
  }

  /**
   * The trial passed: the note that its success is to be reported, then the commit (one write of
   * the boot variables: its slot becomes active), then the counter rises and the record is cleared.
   */
  commit(): Trial {
    const { trial } = this.readBoot();
    if (!trial) throw new Error('There is no trial to commit');
    const committed: CommittedNote = { rolloutId: trial.rolloutId, target: trial.target, slot: trial.slot };
    this.writeRecord({ trial: this.readRecord().trial, committed });
    this.backend.commit();
    this.raiseCounter(trial.securityVersion);
    this.writeRecord({ trial: null, committed });
    return trial;
  }

  /** The commit's `succeeded` status has gone out. */
  committedReported(): void {
    const { committed, ...record } = this.readRecord();
    if (committed) this.writeRecord(record);
  }
}

export async function sha256OfFile(path: string, limit?: number): Promise<string> {
  const hash = createHash('sha256');
  if (limit === 0) return hash.digest('hex');
  for await (const chunk of createReadStream(path, limit === undefined ? {} : { end: limit - 1 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
