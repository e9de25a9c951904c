/**
 * Bounded concurrency for the simulator: provisioning, connecting and updating thousands of
 * devices at once would swamp both the platform and this process.
 */

/** Runs `work` over the items with at most `concurrency` at a time. */
export async function inBatches<T>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index]!, index);
    }
  });
  await Promise.all(lanes);
}
