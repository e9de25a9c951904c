/**
 * A device process for the SDK's process-level tests (started with tsx by device-process.ts, to be
 * killed or to crash on its own), printing each event as one JSON line:
 *
 *   device-main hold DIR BROKER       connects with the identity in DIR, sends a reading, prints
 *                                     `holding` and stays until killed
 *   device-main ack-full DIR BROKER   DIR/queue is a small file system of its own: queues readings
 *                                     offline until its segment ends on a block, fills the disk,
 *                                     connects (every PUBACK then fails to be recorded), frees the
 *                                     disk, queues one more reading and exits 0 once all are acknowledged
 */
import { readdirSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeviceClient } from '../client.js';
import type { DeviceError } from '../errors.js';
import type { QueuedMessage } from '../queue.js';
import { endOnBlock, fillFilesystem, freeFilesystem } from './small-fs.js';

const [mode, dir, brokerUrl] = process.argv.slice(2) as [string, string, string];
const print = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

const client = DeviceClient.fromIdentity(dir, { brokerUrl, backoff: { baseMs: 50, capMs: 200 } });
client.on('queueError', (error: DeviceError, message: QueuedMessage) =>
  print({ event: 'queueError', code: error.code, name: error.name, seq: message.seq }),
);

if (mode === 'hold') {
  await client.connect();
  client.sendTelemetry({ holding: 1 });
  await client.drained(10_000);
  print({ event: 'holding', pid: process.pid });
  setInterval(() => undefined, 60_000);
} else if (mode === 'ack-full') {
  const queueDir = join(dir, 'queue');
  const segment = () =>
    statSync(
      join(
        queueDir,
        readdirSync(queueDir)
          .filter((name) => name.endsWith('.seg'))
          .sort()
          .at(-1)!,
      ),
    ).size;
  client.sendTelemetry({ n: 0 });
  endOnBlock(segment, statfsSync(queueDir).bsize, (padding) => client.sendTelemetry({ pad: 'x'.repeat(padding) }));
  fillFilesystem(queueDir);
  const queued = client.queue.size;
  print({ event: 'queued', count: queued });
  let failures = 0;
  client.on('queueError', () => failures++);
  await client.connect();
  for (let waited = 0; failures < queued && waited < 20_000; waited += 50) await sleep(50);
  await sleep(300);
  print({ event: 'alive', size: client.queue.size });
  freeFilesystem(queueDir);
  client.sendTelemetry({ n: 'after' });
  await client.drained(10_000);
  print({ event: 'drained' });
  await client.stop();
} else throw new Error(`unknown mode ${mode}`);
