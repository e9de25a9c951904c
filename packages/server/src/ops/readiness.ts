/**
 * What `/readyz` checks: the database always, and what the runner adds once it runs (the MQTT
 * broker listening; Redis, when the node shares its broker with others). A load balancer sends
 * traffic to a node only while every check holds; each check gets at most `timeoutMs`, so a hung
 * dependency makes the node unready rather than the probe slow.
 */
export type ReadinessCheck = () => boolean | Promise<boolean>;

export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();

  constructor(private readonly timeoutMs = 2000) {}

  add(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  async evaluate(): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
    const names = [...this.checks.keys()];
    const results = await Promise.all(names.map((name) => this.run(this.checks.get(name)!)));
    const checks = Object.fromEntries(names.map((name, i) => [name, results[i]!]));
    return { ready: results.every(Boolean), checks };
  }

  private async run(check: ReadinessCheck): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.timeoutMs)));
    try {
      return await Promise.race([Promise.resolve().then(check), timeout]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}
