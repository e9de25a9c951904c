#!/usr/bin/env node
// The `bulwark` command. Runs the compiled CLI (built by the root `prepare` script).
import { main } from '../dist/cli/main.js';

await main(process.argv);
