/**
 * The fleet page's second row, loaded after the counts so they show first: the active rollouts
 * (running, paused or halted) with their progress, the open findings counted by severity (bar
 * charts with their numbers as text), and telemetry ingest over the last hour (readings per
 * minute, a line chart loaded on demand with its text alternative). Each card stands alone: a
 * role that may not read rollouts or findings sees the API's reason in that card only.
 */
import { useEffect, useMemo, useState } from 'react';
import { api, SEVERITIES, type FindingView, type IngestRateView, type RolloutDetailView, type RolloutView } from '../api';
import { Alert, BarChart, Card, Link, messageOf } from '../kit';
import { TimeChart } from '../charts/TimeChart';

const ACTIVE = new Set<RolloutView['status']>(['running', 'paused', 'halted']);
/** Open findings are one per check and subject, so a few pages hold them all; past this the count says "at least". */
const FINDING_PAGES = 5;

/** What `load` resolves to, once, or the API's reason it failed. */
function useLoaded<T>(load: () => Promise<T>): { value: T | null; error: string | null } {
  const [state, setState] = useState<{ value: T | null; error: string | null }>({ value: null, error: null });
  useEffect(() => {
    load()
      .then((value) => setState({ value, error: null }))
      .catch((caught: unknown) => setState({ value: null, error: messageOf(caught) }));
  }, []); // once, on mount: `load` is a new function at each render

  return state;
}

async function activeRollouts(): Promise<RolloutDetailView[]> {
  const { rollouts } = await api<{ rollouts: RolloutView[] }>('GET', '/updates/rollouts');
  const active = rollouts.filter((rollout) => ACTIVE.has(rollout.status));
  return Promise.all(active.map((rollout) => api<RolloutDetailView>('GET', `/updates/rollouts/${encodeURIComponent(rollout.id)}`)));
}

async function openFindings(): Promise<{ counts: Record<string, number>; complete: boolean }> {
  const counts: Record<string, number> = Object.fromEntries(SEVERITIES.map((severity) => [severity, 0]));
  let cursor: string | null = null;
  for (let page = 0; page < FINDING_PAGES; page++) {
    const answer: { findings: FindingView[]; nextCursor: string | null } = await api(
      'GET',
      `/assessment/findings?state=open&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    for (const finding of answer.findings) counts[finding.severity] = (counts[finding.severity] ?? 0) + 1;
    cursor = answer.nextCursor;
    if (!cursor) return { counts, complete: true };
  }
  return { counts, complete: false };
}

export function FleetActivity() {
  const rollouts = useLoaded(activeRollouts);
  const findings = useLoaded(openFindings);
  const rate = useLoaded(() => api<IngestRateView>('GET', '/fleet/telemetry/rate'));
  const series = useMemo(
    () =>
      rate.value && {
        times: rate.value.minutes.map((minute) => Date.parse(minute.start)),
        lines: [{ name: 'readings per minute', values: rate.value.minutes.map((minute) => minute.readings) }],
      },
    [rate.value],
  );
  return (
    <div className="grid">
      <Card title="Active rollouts">
        {rollouts.error && <Alert>{rollouts.error}</Alert>}
        {rollouts.value?.length === 0 && <p>No rollout is running.</p>}
        {rollouts.value && rollouts.value.length > 0 && (
          <ul className="rollout-progress">
            {rollouts.value.map((rollout) => {
              const done = rollout.counts.succeeded;
              const percent = Math.round((100 * done) / Math.max(1, rollout.deviceCount));
              return (
                <li key={rollout.id} data-testid="fleet-rollout">
                  <Link to={`/rollouts/${encodeURIComponent(rollout.id)}`}>{rollout.name}</Link>{' '}
                  <span className={`badge badge-${rollout.status}`}>{rollout.status}</span>
                  <progress max={Math.max(1, rollout.deviceCount)} value={done} aria-label={`${rollout.name}: devices updated`} />
                  <span>
                    {done.toLocaleString('en')} / {rollout.deviceCount.toLocaleString('en')} updated ({percent}%), phase{' '}
                    {Math.min(rollout.currentPhase + 1, rollout.phases.length)} of {rollout.phases.length}
                    {rollout.counts.failed + rollout.counts.rolled_back > 0 &&
                      `, ${(rollout.counts.failed + rollout.counts.rolled_back).toLocaleString('en')} failed`}
                  </span>
                </li>
              );
            })}
          </ul>
        )}
      </Card>
      <Card title="Open findings by severity">
        {findings.error && <Alert>{findings.error}</Alert>}
        {findings.value && (
          <>
            <BarChart
              title="Open findings by severity"
              bars={SEVERITIES.map((severity) => ({ label: severity, value: findings.value!.counts[severity] ?? 0 }))}
            />
            {!findings.value.complete && <p>At least these many: more are open.</p>}
            <p>
              <Link to="/findings">All findings</Link>
            </p>
          </>
        )}
      </Card>
      <Card title="Telemetry ingest, last hour">
        {rate.error && <Alert>{rate.error}</Alert>}
        {series && (
          <>
            <p data-testid="ingest-total">
              {rate.value!.minutes.reduce((sum, minute) => sum + minute.readings, 0).toLocaleString('en')} readings stored in the last hour
            </p>
            <TimeChart title="Readings stored per minute, last hour" series={series} testId="ingest-chart" />
          </>
        )}
      </Card>
    </div>
  );
}
