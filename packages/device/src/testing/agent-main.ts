/**
 * Runs `bulwark-agent` from source (tests spawn it with tsx as a child process, to kill it).
 */
import { main } from '../updates/agent-cli.js';

process.exitCode = await main(process.argv.slice(2));
