#!/usr/bin/env node
// The `bulwark-agent` command. Runs the compiled update agent (built by the root `prepare` script).
import { main } from '../dist/updates/agent-cli.js';

process.exitCode = await main(process.argv.slice(2));
