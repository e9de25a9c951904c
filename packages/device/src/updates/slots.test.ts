import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { tempDir } from '../testing/temp.js';
import { Slots } from './slots.js';

const temp = tempDir('slots');
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
let n = 0;

function provisioned(securityVersion = 1): Slots {
  const slots = new Slots(`${temp.dir}/state-${++n}`);
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

  it('boots the active slot when no trial is armed', async () => {
    const slots = provisioned();
    assert.deepEqual(await slots.boot(), { kind: 'normal', slot: 'a' });
    assert.ok(await slots.verify('a'));
    assert.equal(slots.counter(), 1);
  });

  it('gives a trial exactly one boot, counted before it runs, and rolls back at the next boot if it never committed', async () => {
    const slots = provisioned();
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
    const slots = provisioned();
    armed(slots, Buffer.from('good image'), 7);
    await slots.boot();
    slots.commit();
    assert.deepEqual(slots.readBoot(), { active: 'b', trial: null, committed: { rolloutId: 'r', target: 'p/firmware-1.1.0.bin' } });
    slots.committedReported();
    assert.deepEqual(slots.readBoot(), { active: 'b', trial: null });
    assert.equal(slots.counter(), 7);
    assert.deepEqual(await slots.boot(), { kind: 'normal', slot: 'b' });
  });

  it('catches the counter up at boot when a power cut fell between the commit and the counter write', async () => {
    const slots = provisioned();
    armed(slots, Buffer.from('good image'), 9);
    await slots.boot();
    slots.writeBoot({ active: 'b', trial: null }); // the commit's write, without the counter's
    assert.equal(slots.counter(), 1);
    await slots.boot();
    assert.equal(slots.counter(), 9);
  });

  it('never boots a trial slot whose image does not match its manifest: it rolls back instead', async () => {
    const slots = provisioned();
    armed(slots);
    writeFileSync(slots.imagePath('b'), 'corrupted after install');
    assert.equal((await slots.boot()).kind, 'rolled_back');
    assert.deepEqual(slots.readBoot(), { active: 'a', trial: null });
  });

  it('leaves a slot unbootable while its image is being replaced', async () => {
    const slots = provisioned();
    armed(slots);
    await slots.boot();
    slots.commit();
    writeFileSync(slots.partialPath('a'), 'next image');
    assert.throws(() =>
      slots.install('a', { target: 't', version: '1.2.0', sha256: sha256(Buffer.from('next image')), length: 10, securityVersion: 3 }, () => {
        throw new Error('power cut');
      }),
    );
    assert.equal(slots.manifest('a'), null);
    assert.equal(await slots.verify('a'), false);
    assert.throws(() => slots.setTrial({ slot: 'b', target: 't', version: '1', securityVersion: 1, rolloutId: 'r' }), /active slot/);
  });
});
