#!/usr/bin/env node
// The `bulwark-agent` command. Runs the compiled update agent (built by the root `prepare` script).
// `tuf-client` (the TUF conformance suite's client) loads only its own module: the suite starts it
// hundreds of times, and the agent's MQTT and X.509 modules would double each start.
const args = process.argv.slice(2);
if (args[0] === 'tuf-client') {
  const { tufClientMain } = await import('../dist/updates/tuf-client.js');
  process.exitCode = await tufClientMain(args.slice(1), process.stdout, process.stderr);
} else {
  const { main } = await import('../dist/updates/agent-cli.js');
  process.exitCode = await main(args);
}
