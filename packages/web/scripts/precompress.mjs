#!/usr/bin/env node
// Writes `<file>.gz` (gzip level 9) beside each file of the web build over 1 kB: the platform
// serves these to browsers that accept gzip (transport/http/console.ts) instead of compressing the
// whole build at every start, which cost a few hundred milliseconds of blocked event loop per start.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dist = new URL('../dist/', import.meta.url).pathname;
let count = 0;
for (const dir of [dist, join(dist, 'assets'), join(dist, 'app'), join(dist, 'app/assets')]) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name.endsWith('.gz') || !statSync(path).isFile()) continue;
    const body = readFileSync(path);
    if (body.length <= 1024) continue;
    writeFileSync(`${path}.gz`, gzipSync(body, { level: 9 }));
    count++;
  }
}
console.log(`precompressed ${count} files of the web build (.gz)`);
