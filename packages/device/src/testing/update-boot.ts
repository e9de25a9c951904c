/**
 * For the update agent's tests: each boot backend over a real environment of its own, made fresh
 * for each device: the state directory's file (`dir`), a GRUB environment block that grub-editenv
 * creates (`grub`), and a redundant U-Boot environment, two blank 16 KiB files named by an
 * fw_env.config (`uboot`), as libubootenv's fw_setenv and fw_printenv use on a device.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BootBackendKind, BootBackendSettings } from '../updates/boot-backend.js';

/** The size of each U-Boot environment copy (a common CONFIG_ENV_SIZE). */
export const UBOOT_ENV_SIZE = 0x4000;

let environments = 0;

/** A fresh, blank environment of `kind` under `dir`, and the settings that name it. */
export function freshBootEnvironment(kind: BootBackendKind, dir: string): BootBackendSettings {
  const envDir = join(dir, `bootenv-${process.pid}-${++environments}`);
  mkdirSync(envDir, { recursive: true });
  if (kind === 'grub') return { kind, envFile: join(envDir, 'grubenv') };
  if (kind === 'uboot') {
    const copies = ['uboot.env', 'uboot-redundant.env'].map((name) => join(envDir, name));
    for (const copy of copies) writeFileSync(copy, Buffer.alloc(UBOOT_ENV_SIZE));
    const config = join(envDir, 'fw_env.config');
    writeFileSync(config, copies.map((copy) => `${copy} 0x0 0x${UBOOT_ENV_SIZE.toString(16)}\n`).join(''));
    return { kind, config };
  }
  return { kind: 'dir' };
}
