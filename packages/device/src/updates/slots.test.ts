import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { tempDir } from '../testing/temp.js';
import { freshBootEnvironment } from '../testing/update-boot.js';
import { BOOT_BACKENDS, type BootBackendKind } from './boot-backend.js';
import { openBootBackend } from './boot-env.js';
import { Slots } from './slots.js';

const temp = tempDir('slots');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
let n = 0;

function provisioned(kind: BootBackendKind, securityVersion = 1): Slots {
  const stateDir = `${temp.dir}/state-${++n}`;
  const slots = new Slots(stateDir, openBootBackend(stateDir, freshBootEnvironment(kind, temp.dir)));
  slots.provision(Buffer.from('factory image'), { target: 'p/firmware-1.0.0.bin', version: '1.0.0', securityVersion });
  return slots;
}

/** Puts `image` into slot b as a download would, and arms its trial. */
function armed(slots: Slots, image = Buffer.from('new image'), securityVersion = 3): void {
  writeFileSync(slots.partialPath('b'), image);
  slots.install('b', { target: 'p/firmware-1.1.0.bin', version: '1.1.0', sha256: sha256(image), length: image.length, securityVersion });
  slots.setTrial({ slot: 'b', target: 'p/firmware-1.1.0.bin', version: '1.1.0', securityVersion, rolloutId: 'r' });
}

describe('A/B slots and the boot decision', () => {
  after(() => temp.remove());

  for (const kind of BOOT_BACKENDS) describe(`with the ${kind} boot backend`, () => decisions(kind));

  it('with a real bootloader, boots the trial it marked tried and booted (bulwark.slot), and rolls back when it booted the active slot', async () => {
    const slots = provisioned('grub');
    const env = (slots.backend.settings as { envFile: string }).envFile;
    armed(slots);
    execFileSync('grub-editenv', [env, 'set', 'bulwark_tried=1']); // what the grub.cfg of docs/device-sdk.md does as it boots the trial
    assert.equal((await slots.boot('b')).kind, 'trial');
    assert.equal(slots.readBoot().trial?.attempts, 1);
    // The trial never committed; the next power-on: tried, so GRUB boots the active slot.
    const next = await slots.boot('a');
    assert.equal(next.kind, 'rolled_back');
    assert.deepEqual(slots.readBoot(), { active: 'a', trial: null });
  });

  it('drops a commit note whose commit never reached the boot variables (a power cut between them), and rolls the trial back', async () => {
    const slots = provisioned('dir');
    armed(slots);
    await slots.boot();
    const trial = slots.readBoot().trial!;
    // What commit() writes first, without the commit of the variables that follows it:
    writeFileSync(
      `${slots.stateDir}/boot.json`,
      JSON.stringify({ trial: { ...trial, attempts: undefined }, committed: { rolloutId: 'r', target: trial.target, slot: 'b' } }),
    );
    assert.equal((await slots.boot()).kind, 'rolled_back');
    assert.deepEqual(slots.readBoot(), { active: 'a', trial: null });
  });
});

function decisions(kind: BootBackendKind): void {
  it('boots the active slot when no trial is armed', async () => {
    const slots = provisioned(kind);
    assert.deepEqual(await slots.boot(), { kind: 'normal', slot: 'a' });
    assert.ok(await slots.verify('a'));
    assert.equal(slots.counter(), 1);
  });

  it('gives a trial exactly one boot, counted before it runs, and rolls back at the next boot if it never committed', async () => {
    const slots = provisioned(kind);
    armed(slots);
    const first = await slots.boot();
    assert.equal(first.kind, 'trial');
    assert.equal(slots.readBoot().trial?.attempts, 1);
    const second = await slots.boot();
    assert.equal(second.kind, 'rolled_back');
    assert.deepEqual(slots.readBoot(), { active: 'a', trial: null });
    assert.equal(slots.counter(), 1);
  });

  it('commits a trial in one write that also records its success as not yet reported, and raises the anti-rollback counter to its securityVersion', async () => {
    const slots = provisioned(kind);
    armed(slots, Buffer.from('good image'), 7);
    await slots.boot();
    slots.commit();
    assert.deepEqual(slots.readBoot(), {
      active: 'b',
      trial: null,
      committed: { rolloutId: 'r', target: 'p/firmware-1.1.0.bin', slot: 'b' },
    });
    slots.committedReported();
    assert.deepEqual(slots.readBoot(), { active: 'b', trial: null });
    assert.equal(slots.counter(), 7);
    assert.deepEqual(await slots.boot(), { kind: 'normal', slot: 'b' });
  });

  it('catches the counter up at boot when a power cut fell between the commit and the counter write', async () => {
    const slots = provisioned(kind);
    armed(slots, Buffer.from('good image'), 9);
    await slots.boot();
    slots.backend.commit(); // the commit's write, without the counter's
    assert.equal(slots.counter(), 1);
    await slots.boot();
    assert.equal(slots.counter(), 9);
  });

  it('never boots a trial slot whose image does not match its manifest: it rolls back instead', async () => {
    const slots = provisioned(kind);
    armed(slots);
    writeFileSync(slots.imagePath('b'), 'corrupted after install');
    assert.equal((await slots.boot()).kind, 'rolled_back');
    assert.deepEqual(slots.readBoot(), { active: 'a', trial: null });
  });

  it('leaves a slot unbootable while its image is being replaced', async () => {
    const slots = provisioned(kind);
    armed(slots);
    await slots.boot();
    slots.commit();
    writeFileSync(slots.partialPath('a'), 'next image');
    assert.throws(() =>
      slots.install(
        'a',
        { target: 't', version: '1.2.0', sha256: sha256(Buffer.from('next image')), length: 10, securityVersion: 3 },
        () => {
          throw new Error('power cut');
        },
      ),
    );
    assert.equal(slots.manifest('a'), null);
    assert.equal(await slots.verify('a'), false);
    assert.throws(() => slots.setTrial({ slot: 'b', target: 't', version: '1', securityVersion: 1, rolloutId: 'r' }), /active slot/);
  });
}
