/**
 * The update agent: at every start it runs the boot decision (slots.ts) and, in a trial boot, the
 * health check that commits the new image or sends the device back to the old one; then, when
 * asked (an `updates/available` hint or the periodic check), it runs
 * check → download → install → set trial → reboot, reporting each step on `updates/status`
 * and what it runs in a signed version report. "Reboot" is the start of a new agent over the
 * same state directory: `check` answers `'reboot'` and the caller (the CLI, or a test) starts
 * the agent again, exactly as a device restarts into its bootloader.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { SignedVersionReport, UpdateState, UpdateStatus } from '@bulwark/protocol';
import { DeviceError } from '../errors.js';
import { approveTarget, type ApprovedUpdate } from './approve.js';
import { fetchUpdateMetadata } from './check-metadata.js';
import { DirectorClient, type Clock, type DirectorTarget } from './director.js';
import { readJson, writeJsonDurably } from './durable.js';
import { downloadImage } from './download.js';
import { HashMismatchError, HealthCheckFailedError, UpdateError } from './errors.js';
import { mutualTls, type TlsIdentity } from './https.js';
import { pinnedProduct } from './provision.js';
import { ReportCounter, signVersionReport } from './report.js';
import { ImageRepository } from './repository.js';
import { otherSlot, sha256OfFile, Slots, type SlotManifest, type SlotName } from './slots.js';

/** Where the agent reports: MQTT through the SDK client in the field, a callback in tests. */
export interface UpdateChannel {
  status(status: UpdateStatus): void | Promise<void>;
  /** Resolves once the platform acknowledged the report (the default health check waits for it). */
  report(report: SignedVersionReport): void | Promise<void>;
}

/** The points where a power cut is simulated (fault injection for the power-cut tests). */
export const AGENT_STEPS = ['download', 'downloaded', 'slot-write', 'trial-set', 'trial-boot', 'committed'] as const;
export type AgentStep = (typeof AGENT_STEPS)[number];

export interface HealthContext {
  slot: SlotName;
  manifest: SlotManifest;
  /** Sends the signed version report; resolves when acknowledged. */
  sendReport(): Promise<void>;
}

export interface AgentOptions {
  stateDir: string;
  deviceId: string;
  hardwareId: string;
  organizationId: string;
  /** The platform's HTTPS origin (image repository and director). */
  baseUrl: string;
  /** The device's deployment root, certificate and key (from its identity directory). */
  tls: TlsIdentity;
  channel?: UpdateChannel;
  /** Passes, or throws, within `healthTimeoutMs`. Default: the slot verifies and the channel acknowledges the version report. */
  healthCheck?: (context: HealthContext) => Promise<void>;
  healthTimeoutMs?: number;
  download?: { idleTimeoutMs?: number; maxAttempts?: number };
  clock?: Clock;
  /**
   * The slot a real bootloader booted (its `bulwark.slot=` on the kernel command line), which has
   * then marked the trial tried itself; absent, the agent plays the bootloader (docs/device-sdk.md).
   */
  bootedSlot?: SlotName;
  /** Called at each named step (fault injection). */
  onStep?: (step: AgentStep) => void;
  timeoutMs?: number;
}

export type BootOutcome = 'normal' | 'committed' | 'rolled_back' | 'reboot';
export type CheckOutcome = 'up_to_date' | 'reboot' | 'refused' | 'failed';

interface RejectedTarget {
  sha256: string;
}

/** What the platform accepts in a status or report (rollout-messages.ts on the server). */
const MAX_MESSAGE_CHARS = 500;
const MAX_REPORT_ERRORS = 20;

const bounded = (error: { code: string; message: string }): { code: string; message: string } => ({
  code: error.code.slice(0, 64),
  message: error.message.length > MAX_MESSAGE_CHARS ? `${error.message.slice(0, MAX_MESSAGE_CHARS - 1)}…` : error.message,
});

export class UpdateAgent {
  readonly slots: Slots;
  private readonly clock: Clock;
  private readonly counter: ReportCounter;
  /** The slot this start booted (set by start()). */
  private running: SlotName | null = null;
  private errors: { code: string; message: string }[] = [];
  /** The last refusal or failure, for callers and tests. */
  lastError: DeviceError | null = null;

  constructor(private readonly options: AgentOptions) {
    this.slots = new Slots(options.stateDir);
    this.clock = options.clock ?? { now: () => Date.now() };
    this.counter = new ReportCounter(options.stateDir);
  }

  get slot(): SlotName {
    if (!this.running) throw new Error('The agent has not started');
    return this.running;
  }

  /** The boot: decides the slot, and in a trial boot checks health, then commits or asks for the reboot that rolls back. */
  async start(): Promise<BootOutcome> {
    const decision = await this.slots.boot(this.options.bootedSlot ?? null);
    this.running = decision.slot;
    if (decision.kind === 'normal') {
      await this.reportCommitted();
      // Not awaited: the report waits in the client's queue while the device is offline.
      this.sendReport().catch(() => undefined);
      return 'normal';
    }
    const { trial } = decision;
    if (decision.kind === 'rolled_back') {
      this.rememberRejected(trial.slot);
      const error = trial.error ?? {
        code: 'update.health_check_failed',
        message: `The trial boot of ${trial.target} never committed (crash or power loss)`,
      };
      this.errors.push(error);
      await this.status(trial.rolloutId, 'rolled_back', trial.target, error);
      this.sendReport().catch(() => undefined);
      return 'rolled_back';
    }
    this.step('trial-boot');
    await this.status(trial.rolloutId, 'verifying', trial.target);
    try {
      await this.checkHealth(decision.slot);
    } catch (error) {
      const failure = new HealthCheckFailedError(`The health check of ${trial.target} failed: ${(error as Error).message}`);
      this.lastError = failure;
      this.slots.failTrial({ code: failure.code, message: failure.message });
      return 'reboot';
    }
    this.slots.commit();
    this.step('committed');
    await this.reportCommitted();
    return 'committed';
  }

  /** Sends the `succeeded` status of a commit not reported yet (a power cut can fall between the commit and its status). */
  private async reportCommitted(): Promise<void> {
    const { committed } = this.slots.readBoot();
    if (!committed) return;
    await this.status(committed.rolloutId, 'succeeded', committed.target);
    this.slots.committedReported();
  }

  /**
   * One update check; `'reboot'` means a new image is armed for its trial boot. The image
   * repository is refreshed whatever the director says: a stolen director key naming nothing
   * forever must not hide a frozen repository (its expiry is reported like any refusal).
   */
  async check(): Promise<CheckOutcome> {
    const running = this.slots.manifest(this.slot);
    const director = new DirectorClient({
      baseUrl: this.options.baseUrl,
      tls: this.options.tls,
      dir: join(this.options.stateDir, 'director'),
      deviceId: this.options.deviceId,
      clock: this.clock,
      timeoutMs: this.options.timeoutMs,
    });
    const repository = ImageRepository.ofPlatform({
      baseUrl: this.options.baseUrl,
      organizationId: this.options.organizationId,
      metadataDir: join(this.options.stateDir, 'tuf'),
      tls: this.options.tls,
      timeoutMs: this.options.timeoutMs,
    });
    let wanted: DirectorTarget | null = null;
    let update: ApprovedUpdate;
    let url: string;
    try {
      // What the check reads, in one request; each part is verified below as if fetched alone.
      const product = pinnedProduct(this.options.stateDir);
      const received = await fetchUpdateMetadata(
        this.options.baseUrl,
        this.options.tls,
        { directorRoot: director.root().signed.version, ...repository.trustedVersions(), ...(product ? { product } : {}) },
        this.options.timeoutMs,
      );
      wanted = (await director.check(received?.director)).target;
      if (received) repository.preload(received.repository.files, received.repository.latestRoot);
      await repository.refresh();
      // Walks the running image's product line too, so its delegated metadata's expiry is noticed.
      if (running) await repository.target(running.target);
      if (!wanted || wanted.sha256 === running?.sha256) return 'up_to_date';
      if (readJson<RejectedTarget | null>(this.rejectedPath, null)?.sha256 === wanted.sha256) return 'up_to_date';
      const facts = {
        productId: product,
        hardwareId: this.options.hardwareId,
        runningVersion: running?.version ?? null,
        securityCounter: this.slots.counter(),
      };
      const signed = await repository.target(wanted.name);
      update = approveTarget(wanted, signed, facts);
      url = repository.targetUrl(signed!.file, 'sha256');
    } catch (error) {
      // A verdict on what the director named fails its rollout; a transfer failure is retried at the next check.
      const named = wanted && error instanceof UpdateError ? { rolloutId: wanted.custom.rolloutId, target: wanted.name } : null;
      return this.refuse(error, named);
    }
    try {
      await this.install(update, url, otherSlot(this.slot));
    } catch (error) {
      return this.refuse(error, update);
    }
    return 'reboot';
  }

  private async install(update: ApprovedUpdate, url: string, slot: SlotName): Promise<void> {
    const partialInfo = join(this.slots.dir(slot), 'partial.json');
    const partial = readJson<{ sha256: string } | null>(partialInfo, null);
    if (partial?.sha256 !== update.sha256) {
      // A partial of another image is dropped. The download goes beside the slot's image, which stays
      // bootable (the fallback) until slots.install() replaces it with bytes that verified.
      rmSync(this.slots.partialPath(slot), { force: true });
      writeJsonDurably(partialInfo, { sha256: update.sha256 });
    }
    await this.status(update.rolloutId, 'downloading', update.target);
    let reported = false;
    await downloadImage({
      url,
      get: mutualTls(this.options.tls),
      path: this.slots.partialPath(slot),
      length: update.length,
      hashes: { sha256: update.sha256 },
      idleTimeoutMs: this.options.download?.idleTimeoutMs,
      maxAttempts: this.options.download?.maxAttempts,
      onProgress: () => {
        if (!reported) this.step('download');
        reported = true;
      },
    });
    this.step('downloaded');
    await this.status(update.rolloutId, 'installing', update.target);
    const manifest: SlotManifest = {
      target: update.target,
      version: update.version,
      sha256: update.sha256,
      length: update.length,
      securityVersion: update.securityVersion,
    };
    this.slots.install(slot, manifest, () => this.step('slot-write'));
    rmSync(partialInfo, { force: true });
    // Read back what the slot holds: the bytes that will boot must be the bytes that were verified.
    const written = await sha256OfFile(this.slots.imagePath(slot));
    if (written !== update.sha256) {
      this.slots.invalidate(slot);
      throw new HashMismatchError(update.sha256, written);
    }
    this.slots.setTrial({
      slot,
      target: update.target,
      version: update.version,
      securityVersion: update.securityVersion,
      rolloutId: update.rolloutId,
    });
    this.step('trial-set');
    await this.status(update.rolloutId, 'rebooting', update.target);
  }

  private async checkHealth(slot: SlotName): Promise<void> {
    const manifest = this.slots.manifest(slot);
    if (!manifest) throw new Error(`Slot ${slot} has no manifest`);
    const context: HealthContext = { slot, manifest, sendReport: () => this.sendReport() };
    const check =
      this.options.healthCheck ??
      (async (ctx: HealthContext) => {
        if (!(await this.slots.verify(ctx.slot))) throw new Error(`slot ${ctx.slot} does not match its manifest`);
        await ctx.sendReport();
      });
    const limit = this.options.healthTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        check(context),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no result within ${limit} ms`)), limit);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Signs and sends what runs now (and the errors since the last report). */
  async sendReport(): Promise<void> {
    if (!this.options.channel) return;
    const manifest = this.slots.manifest(this.slot);
    const report = signVersionReport(
      {
        deviceId: this.options.deviceId,
        counter: this.counter.next(),
        ts: this.clock.now(),
        running: { target: manifest?.target ?? null, version: manifest?.version ?? null, sha256: manifest?.sha256 ?? null },
        slot: this.slot,
        securityVersion: this.slots.counter(),
        errors: this.errors.splice(0).slice(-MAX_REPORT_ERRORS).map(bounded),
      },
      this.options.tls.key,
    );
    await this.options.channel.report(report);
  }

  /** Records the refusal, sends the `failed` status of the rollout it ends (when there is one) and the version report. */
  private async refuse(error: unknown, failed: { rolloutId: string; target: string } | null): Promise<CheckOutcome> {
    const known = error instanceof DeviceError;
    this.lastError = known ? error : new DeviceError((error as Error).message, 'update.check_failed');
    const { code, message } = this.lastError;
    this.errors.push({ code, message });
    if (failed) await this.status(failed.rolloutId, 'failed', failed.target, { code, message });
    this.sendReport().catch(() => undefined);
    return error instanceof UpdateError ? 'refused' : 'failed';
  }

  private get rejectedPath(): string {
    return join(this.options.stateDir, 'rejected.json');
  }

  /** A rolled-back image is not installed again until the director names another. */
  private rememberRejected(slot: SlotName): void {
    const manifest = this.slots.manifest(slot);
    if (manifest) writeJsonDurably(this.rejectedPath, { sha256: manifest.sha256 } satisfies RejectedTarget);
  }

  private async status(rolloutId: string, state: UpdateState, target: string, error?: { code: string; message: string }): Promise<void> {
    const status: UpdateStatus = { rolloutId, state, target, ts: this.clock.now(), ...(error ? { error: bounded(error) } : {}) };
    await this.options.channel?.status(status);
  }

  private step(step: AgentStep): void {
    this.options.onStep?.(step);
  }
}
