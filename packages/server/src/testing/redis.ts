/**
 * The machine's Redis for tests that run several brokers (nodes or workers): its URL, and whether it
 * answers. Outside CI an unreachable Redis skips those tests with one loud line; with CI=true it fails.
 */
import { connect } from 'node:net';

export const REDIS_URL = process.env.BULWARK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/9';

/** Why Redis cannot be used here, or false when it answers PING. */
export async function redisProblem(): Promise<string | false> {
  const url = new URL(REDIS_URL);
  const problem = await new Promise<string | false>((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port || 6379) });
    const fail = (why: string) => {
      socket.destroy();
      resolve(why);
    };
    socket.setTimeout(3000, () => fail('timeout'));
    socket.once('error', (error) => fail(error.message));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.end();
      resolve(data.toString().startsWith('+PONG') ? false : `unexpected answer ${data.toString().trim()}`);
    });
  });
  if (problem && process.env.CI === 'true')
    throw new Error(`Redis at ${REDIS_URL} is unreachable (${problem}) and CI=true makes it mandatory`);
  if (problem) console.error(`\n!!! Redis at ${REDIS_URL} is unreachable (${problem}): the tests that need it are SKIPPED !!!\n`);
  return problem;
}
