#!/usr/bin/env node
// The `bulwark-sim` command. Runs the compiled simulator (built by the root `prepare` script).
import { main } from '../dist/sim/cli.js';

process.exitCode = await main(process.argv.slice(2));
