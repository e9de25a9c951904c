/**
 * The A/B slots on disk and the boot decision, as a bootloader would keep them:
 *
 *   <state>/slots/a/image.bin, manifest.json   (and image.partial while downloading)
 *   <state>/slots/b/…
 *   <state>/boot.json          { active, trial: null | { slot, target, version, securityVersion, rolloutId, attempts, error? },
 *                                committed?: { rolloutId, target } }
 *   <state>/rollback-counter   the committed anti-rollback counter (decimal)
 *
 * Every file is replaced atomically (durable.ts). A slot is bootable only while its manifest
 * exists and its image hashes to the manifest's SHA-256; installing removes the manifest first,
 * so a power cut mid-install leaves the slot unbootable rather than half-written and trusted.
 * The trial protocol: a new image boots once (attempts 0 → 1, persisted before it runs); only a
 * passed health check commits it; any boot that finds attempts ≥ 1 rolls back to the old slot.
 * The commit also records that its success is still to be reported, in the same write, so a power
 * cut right after it still ends in a `succeeded` status.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir, readJson, writeDurably, writeJsonDurably } from './durable.js';

export type SlotName = 'a' | 'b';

export interface SlotManifest {
  target: string;
  version: string;
  sha256: string;
  length: number;
  securityVersion: number;
}

export interface Trial {
  slot: SlotName;
  target: string;
  version: string;
  securityVersion: number;
  rolloutId: string;
  attempts: number;
  /** Why the trial boot failed, when it knows (a crash leaves none). */
  error?: { code: string; message: string };
}

export interface BootState {
  active: SlotName;
  trial: Trial | null;
  /** A commit whose `succeeded` status has not been sent yet. */
  committed?: { rolloutId: string; target: string };
}

export type BootDecision =
  | { kind: 'normal'; slot: SlotName }
  /** Booting the new image for its one trial: run the health check, then commit or fail. */
  | { kind: 'trial'; slot: SlotName; trial: Trial }
  /** The trial never committed: the old slot runs again. */
  | { kind: 'rolled_back'; slot: SlotName; trial: Trial };

export const otherSlot = (slot: SlotName): SlotName => (slot === 'a' ? 'b' : 'a');

export class Slots {
  constructor(readonly stateDir: string) {}

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
    this.writeBoot({ active: 'a', trial: null });
    return full;
  }

  readBoot(): BootState {
    if (!existsSync(this.bootPath)) throw new Error(`${this.bootPath} does not exist: provision the device first (bulwark-agent setup)`);
    return JSON.parse(readFileSync(this.bootPath, 'utf8')) as BootState;
  }

  writeBoot(state: BootState): void {
    writeJsonDurably(this.bootPath, state);
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
   * The bootloader's decision, run at every start. A trial gets exactly one boot: the attempt is
   * counted (durably) before the new image runs, so a crash anywhere in it ends in a rollback.
   */
  async boot(): Promise<BootDecision> {
    const state = this.readBoot();
    // A commit is one write of boot.json; the counter follows it, and is caught up here if a power cut fell between.
    this.raiseCounter(this.manifest(state.active)?.securityVersion ?? 0);
    const trial = state.trial;
    if (!trial) return { kind: 'normal', slot: state.active };
    if (trial.attempts === 0 && (await this.verify(trial.slot))) {
      const counted = { ...trial, attempts: 1 };
      this.writeBoot({ ...state, trial: counted });
      return { kind: 'trial', slot: trial.slot, trial: counted };
    }
    this.writeBoot({ ...state, trial: null });
    return { kind: 'rolled_back', slot: state.active, trial };
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
  setTrial(trial: Omit<Trial, 'attempts'>): void {
    const state = this.readBoot();
    if (trial.slot === state.active) throw new Error(`Slot ${trial.slot} is the active slot; a trial runs in the inactive one`);
    this.writeBoot({ ...state, trial: { ...trial, attempts: 0 } });
  }

  /** Records why the running trial failed (it is rolled back at the next boot). */
  failTrial(error: { code: string; message: string }): void {
    const state = this.readBoot();
    if (state.trial) this.writeBoot({ ...state, trial: { ...state.trial, error } });
  }

  /** The trial passed: its slot becomes active, its success to be reported (one atomic write), then the counter rises. */
  commit(): Trial {
    const state = this.readBoot();
    if (!state.trial) throw new Error('There is no trial to commit');
    this.writeBoot({ active: state.trial.slot, trial: null, committed: { rolloutId: state.trial.rolloutId, target: state.trial.target } });
    this.raiseCounter(state.trial.securityVersion);
    return state.trial;
  }

  /** The commit's `succeeded` status has gone out. */
  committedReported(): void {
    const { committed, ...state } = this.readBoot();
    if (committed) this.writeBoot(state);
  }
}

export async function sha256OfFile(path: string, limit?: number): Promise<string> {
  const hash = createHash('sha256');
  if (limit === 0) return hash.digest('hex');
  for await (const chunk of createReadStream(path, limit === undefined ? {} : { end: limit - 1 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
