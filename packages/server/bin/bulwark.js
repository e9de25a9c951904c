#!/usr/bin/env -S node --max-semi-space-size=32
// V8's young generation at 32 MB a semi-space (Node's default: 16): a node's MQTT messages make
// short-lived garbage at a steady rate, and with the larger nursery it collects half as often with
// shorter pauses (docs/operations.md, "A lean load generator": open-loop PUBACK p99 and event-loop
// delay down, the same idle memory). `npm start` passes the same flag; `--workers` inherit it.
// The `bulwark` command. Runs the CLI's bundle (dist/cli-bundle, scripts/bundle-cli.mjs) when it is
// newer than the last compile of this package and of @bulwark/protocol, else the compiled modules in
// dist/ (both are built by the root `prepare` script, `npm run build`). Same code either way; the
// bundle starts in about a third of the CPU (a few dozen files to load instead of about 1,200).
import { statSync } from 'node:fs';

const modifiedAt = (relative) => statSync(new URL(relative, import.meta.url), { throwIfNoEntry: false })?.mtimeMs;
const bundled = modifiedAt('../dist/cli-bundle/inputs.json');
const compiled = [modifiedAt('../tsconfig.tsbuildinfo'), modifiedAt('../../protocol/tsconfig.tsbuildinfo')];
const current = bundled !== undefined && compiled.every((time) => time === undefined || time <= bundled);
const { main } = await import(current ? '../dist/cli-bundle/main.js' : '../dist/cli/main.js');

await main(process.argv);
