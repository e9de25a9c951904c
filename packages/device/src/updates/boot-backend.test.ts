import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../testing/temp.js';
import { freshBootEnvironment, UBOOT_ENV_SIZE } from '../testing/update-boot.js';
import { BOOT_BACKENDS, BootBackendError, DirBootBackend, type BootBackendSettings } from './boot-backend.js';
import { openBootBackend } from './boot-env.js';

const temp = tempDir('boot-backend');
let n = 0;

/** What the bootloader's own tool reads from the environment (the dir backend: its file). */
function asTheToolSeesIt(settings: BootBackendSettings, stateDir: string): Record<string, string> {
  const text =
    settings.kind === 'grub'
      ? execFileSync('grub-editenv', [settings.envFile, 'list'], { encoding: 'utf8' })
      : settings.kind === 'uboot'
        ? execFileSync('fw_printenv', ['-c', settings.config], { encoding: 'utf8' })
        : Object.entries(JSON.parse(execFileSync('cat', [join(stateDir, 'bootenv.json')], { encoding: 'utf8' })) as Record<string, string>)
            .map(([name, value]) => `${name}=${value}`)
            .join('\n');
  // U-Boot deletes a variable set to nothing; the others keep it empty: the same "no trial".
  return {
    bulwark_trial: '',
    ...Object.fromEntries(
      text
        .split('\n')
        .filter((line) => line.startsWith('bulwark_'))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    ),
  };
}

describe('boot backends: the A/B variables in the bootloader environment, through the real tools', () => {
  after(() => temp.remove());

  for (const kind of BOOT_BACKENDS) {
    it(`${kind}: provisions slot a, arms a trial, marks its try used, commits, and rolls a later trial back, each visible to the bootloader's own tool`, () => {
      const stateDir = join(temp.dir, `state-${++n}`);
      mkdirSync(stateDir);
      const settings = freshBootEnvironment(kind, temp.dir);
      const backend = openBootBackend(stateDir, settings);
      const seen = () => asTheToolSeesIt(settings, stateDir);

      backend.provision();
      assert.deepEqual(backend.read(), { active: 'a', trial: null, tried: false });
      assert.deepEqual(seen(), { bulwark_active: 'a', bulwark_trial: '', bulwark_tried: '0' });
      assert.throws(() => backend.armTrial('a'), BootBackendError);

      backend.armTrial('b');
      assert.deepEqual(seen(), { bulwark_active: 'a', bulwark_trial: 'b', bulwark_tried: '0' });
      backend.startTrial();
      assert.deepEqual(backend.read(), { active: 'a', trial: 'b', tried: true });
      backend.commit();
      assert.deepEqual(seen(), { bulwark_active: 'b', bulwark_trial: '', bulwark_tried: '0' });

      backend.armTrial('a');
      backend.startTrial();
      backend.rollback();
      assert.deepEqual(backend.read(), { active: 'b', trial: null, tried: false });
      assert.deepEqual(seen(), { bulwark_active: 'b', bulwark_trial: '', bulwark_tried: '0' });
    });
  }

  it('grub: reads the variables a bootloader script saved (grub-editenv set), and refuses values no slot has', () => {
    const settings = freshBootEnvironment('grub', temp.dir) as Extract<BootBackendSettings, { kind: 'grub' }>;
    const backend = openBootBackend(temp.dir, settings);
    backend.provision();
    backend.armTrial('b');
    execFileSync('grub-editenv', [settings.envFile, 'set', 'bulwark_tried=1']);
    assert.deepEqual(backend.read(), { active: 'a', trial: 'b', tried: true });
    execFileSync('grub-editenv', [settings.envFile, 'set', 'bulwark_active=c']);
    assert.throws(() => backend.read(), /boot variables are not valid/);
  });

  it('uboot: refuses an environment that is no longer valid (bad CRC) at run time instead of writing defaults over it', () => {
    const settings = freshBootEnvironment('uboot', temp.dir) as Extract<BootBackendSettings, { kind: 'uboot' }>;
    const backend = openBootBackend(temp.dir, settings);
    backend.provision();
    for (const line of execFileSync('cat', [settings.config], { encoding: 'utf8' }).trim().split('\n'))
      writeFileSync(line.split(' ')[0]!, Buffer.alloc(UBOOT_ENV_SIZE, 0xff));
    assert.throws(() => backend.read(), BootBackendError);
    assert.throws(() => backend.armTrial('b'), BootBackendError);
  });

  it('dir: takes the variables of a state directory set up before the backends from its boot.json', () => {
    const stateDir = join(temp.dir, `old-${++n}`);
    mkdirSync(stateDir);
    writeFileSync(
      join(stateDir, 'boot.json'),
      JSON.stringify({ active: 'b', trial: { slot: 'a', target: 't', version: '2', securityVersion: 1, rolloutId: 'r', attempts: 1 } }),
    );
    assert.deepEqual(new DirBootBackend(stateDir).read(), { active: 'b', trial: 'a', tried: true });
  });
});
