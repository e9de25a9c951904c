/**
 * Rollouts: the list (newest first, cursor pages) with each rollout's phase and progress, and one
 * rollout's page: its phases, devices counted per state (all, and in the phases reached so far),
 * the devices with their states (filter, cursor pages), and pause / resume / abort behind a
 * confirmation. Both refresh every few seconds while a rollout is unfinished.
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import {
  api,
  query,
  ROLLOUT_DEVICE_STATES,
  type ProductView,
  type ReleaseView,
  type RolloutDetailView,
  type RolloutDeviceView,
  type RolloutStatus,
  type RolloutView,
} from '../api';
import {
  Alert,
  Table,
  BarChart,
  Card,
  ConfirmAction,
  ConfirmDialog,
  Button,
  Field,
  Link,
  messageOf,
  Pager,
  Select,
  useCursorPages,
  When,
} from '../kit';
import { navigate } from '../router';

const REFRESH_MS = 5000;
const FINISHED: RolloutStatus[] = ['aborted', 'completed'];

/** Calls `load` now and every few seconds while `live`; stops on unmount. */
function usePolling(load: () => Promise<void>, live: boolean, onError: (message: string) => void) {
  useEffect(() => {
    const run = () => load().catch((caught: unknown) => onError(messageOf(caught)));
    void run();
    if (!live) return;
    const timer = setInterval(run, REFRESH_MS);
    return () => clearInterval(timer);
  }, [load, live, onError]);
}

function Progress(props: { rollout: RolloutDetailView; label: string }) {
  const done = props.rollout.counts.succeeded;
  return (
    <span className="progress">
      <progress max={Math.max(1, props.rollout.deviceCount)} value={done} aria-label={props.label} /> {done.toLocaleString('en')} /{' '}
      {props.rollout.deviceCount.toLocaleString('en')} updated
    </span>
  );
}

const phaseText = (rollout: RolloutView) =>
  `${Math.min(rollout.currentPhase + 1, rollout.phases.length)} of ${rollout.phases.length} (${rollout.phases[rollout.currentPhase]?.percent ?? 100}%)`;

/** A page of rollouts, each with its detail (counts by device state). */
async function loadRollouts(cursor: string | null) {
  const list = await api<{ rollouts: RolloutView[]; nextCursor: string | null }>('GET', `/updates/rollouts${query({ cursor })}`);
  const rollouts = await Promise.all(
    list.rollouts.map((r) => api<RolloutDetailView>('GET', `/updates/rollouts/${encodeURIComponent(r.id)}`)),
  );
  return { rollouts, nextCursor: list.nextCursor };
}

export function Rollouts() {
  const [error, setError] = useState<string | null>(null);
  const { paging, shown } = useCursorPages(loadRollouts, setError, REFRESH_MS);

  return (
    <>
      <h1>Rollouts</h1>
      <NewRollout />
      {error && <Alert>{error}</Alert>}
      {shown && (
        <>
          <Table
            label="Rollouts"
            caption={`Rollouts, page ${shown.number}`}
            columns={['Name', 'Status', 'Phase', 'Progress', 'Failed', 'Started']}
          >
            {shown.rows.rollouts.map((rollout) => (
              <tr key={rollout.id} data-testid="rollout">
                <td>
                  <Link to={`/rollouts/${encodeURIComponent(rollout.id)}`}>{rollout.name}</Link>
                </td>
                <td>
                  <span className={`badge badge-${rollout.status}`}>{rollout.status}</span>
                </td>
                <td>{phaseText(rollout)}</td>
                <td>
                  <Progress rollout={rollout} label={`${rollout.name}: devices updated`} />
                </td>
                <td>{(rollout.counts.failed + rollout.counts.rolled_back).toLocaleString('en')}</td>
                <td>
                  <When at={rollout.createdAt} />
                </td>
              </tr>
            ))}
          </Table>
          {shown.rows.rollouts.length === 0 && <p>No rollout yet: start one with `bulwark updates rollout create` or the API.</p>}
          <Pager paging={paging} shown={shown} />
        </>
      )}
    </>
  );
}

/** "10, 50, 100" → phases of those cumulative percentages, each soaking `soakMinutes`; null when malformed. */
function phasesOf(text: string, soakMinutes: number): { percent: number; soakSeconds: number }[] | null {
  const percents = text.split(',').map((part) => Number(part.trim()));
  const rising = percents.every((p, i) => Number.isFinite(p) && p > 0 && p <= 100 && (i === 0 || p > percents[i - 1]!));
  if (!rising || percents.at(-1) !== 100) return null;
  return percents.map((percent, i) => ({ percent, soakSeconds: i === percents.length - 1 ? 0 : soakMinutes * 60 }));
}

const listOf = (text: string) =>
  text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

/** Start a rollout: a release, which of its product's devices (tags, groups, firmware versions), phases and a failure threshold. */
function NewRollout() {
  const [releases, setReleases] = useState<ReleaseView[]>([]);
  const [products, setProducts] = useState<ProductView[]>([]);
  const [releaseId, setReleaseId] = useState('');
  const [name, setName] = useState('');
  const [tags, setTags] = useState('');
  const [groups, setGroups] = useState('');
  const [versions, setVersions] = useState('');
  const [phases, setPhases] = useState('10, 50, 100');
  const [soak, setSoak] = useState('60');
  const [failure, setFailure] = useState('10');
  const [confirming, setConfirming] = useState(false);
  const [count, setCount] = useState<{ matched: number; enrollable: number; busy: number } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    Promise.all([api<{ releases: ReleaseView[] }>('GET', '/updates/releases'), api<{ products: ProductView[] }>('GET', '/products')])
      .then(([r, p]) => {
        setReleases(r.releases);
        setProducts(p.products);
        setReleaseId((current) => current || r.releases[0]?.id || '');
      })
      .catch((caught: unknown) => setError(messageOf(caught)));
  }, []);

  const release = releases.find((r) => r.id === releaseId);
  const productName = (id: string) => products.find((p) => p.id === id)?.name ?? id;
  const selector = {
    ...(listOf(tags).length ? { tags: listOf(tags) } : {}),
    ...(listOf(groups).length ? { groups: listOf(groups) } : {}),
    ...(listOf(versions).length ? { firmwareVersions: listOf(versions) } : {}),
  };
  const plan = phasesOf(phases, Number(soak));
  const ask = async (event: FormEvent) => {
    event.preventDefault();
    setError(plan ? null : 'Phases: rising percentages separated by commas, ending at 100 (e.g. 10, 50, 100)');
    if (!plan) return;
    try {
      setCount(await api('POST', '/updates/rollouts/preview', { releaseId, selector }));
      setConfirming(true);
    } catch (caught) {
      setError(messageOf(caught));
    }
  };
  const described = [tags && `tags ${tags}`, groups && `groups ${groups}`, versions && `firmware ${versions}`].filter(Boolean);

  return (
    <Card title="New rollout">
      {error && <Alert>{error}</Alert>}
      {releases.length === 0 ? (
        <p>No release yet: publish one first (bulwark updates release).</p>
      ) : (
        <form onSubmit={(event) => void ask(event)} aria-label="Start a rollout" className="filters">
          <Select
            label="Release"
            value={releaseId}
            onChange={setReleaseId}
            options={releases.map((r) => ({ value: r.id, label: `${productName(r.productId)} ${r.version}` }))}
          />
          <Field label="Name" value={name} onChange={setName} name="rollout-name" />
          <Field label="Tags (any of, comma-separated)" value={tags} onChange={setTags} name="tags" />
          <Field label="Groups (comma-separated)" value={groups} onChange={setGroups} name="groups" />
          <Field label="From firmware versions" value={versions} onChange={setVersions} name="versions" />
          <Field label="Phases (% of devices)" value={phases} onChange={setPhases} name="phases" />
          <Field label="Soak between phases (minutes)" type="number" value={soak} onChange={setSoak} />
          <Field label="Halt at failed (%)" type="number" value={failure} onChange={setFailure} />
          <Button type="submit">Start rollout…</Button>
        </form>
      )}
      <ConfirmDialog
        title={`Start rolling out ${release ? `${productName(release.productId)} ${release.version}` : ''}?`}
        open={confirming}
        onClose={() => setConfirming(false)}
        confirmLabel="Start rollout"
        variant="primary"
        onConfirm={async () => {
          const created = await api<RolloutView & { enrolled: number; skipped: number }>('POST', '/updates/rollouts', {
            releaseId,
            ...(name.trim() ? { name: name.trim() } : {}),
            selector,
            phases: plan,
            failureThreshold: Number(failure) / 100,
          });
          setConfirming(false);
          navigate(`/rollouts/${encodeURIComponent(created.id)}`);
        }}
      >
        <p data-testid="preview">
          {count?.enrollable.toLocaleString('en')} devices of the product {described.length ? `with ${described.join(', ')}` : ''} are
          enrolled now
          {count && count.busy > 0 ? ` (${count.busy.toLocaleString('en')} more match but are in another rollout and are skipped)` : ''}, in{' '}
          {plan?.length ?? 0} phases ({phases}%), soaking {soak} minutes between them; the rollout halts when {failure}% of a phase fails.
        </p>
      </ConfirmDialog>
    </Card>
  );
}

type Steer = 'pause' | 'resume' | 'abort';
const STEER_TEXT: Record<Steer, { label: string; says: string }> = {
  pause: { label: 'Pause', says: 'No device is offered the release until it is resumed; devices already updating finish.' },
  resume: { label: 'Resume', says: 'Devices of the current phase are offered the release again.' },
  abort: { label: 'Abort', says: 'The rollout ends for good: devices not yet updated keep their firmware. This cannot be undone.' },
};

export function RolloutDetail(props: { id: string }) {
  const [rollout, setRollout] = useState<RolloutDetailView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [steering, setSteering] = useState<Steer | null>(null);
  const path = `/updates/rollouts/${encodeURIComponent(props.id)}`;

  const load = useCallback(async () => setRollout(await api<RolloutDetailView>('GET', path)), [path]);
  usePolling(load, rollout === null || !FINISHED.includes(rollout.status), setError);

  if (error && !rollout) return <Alert>{error}</Alert>;
  if (!rollout) return <p className="loading">Loading…</p>;
  const actions: Steer[] = FINISHED.includes(rollout.status) ? [] : rollout.status === 'running' ? ['pause', 'abort'] : ['resume', 'abort'];
  const bars = (counts: RolloutDetailView['counts']) => ROLLOUT_DEVICE_STATES.map((state) => ({ label: state, value: counts[state] }));
  return (
    <>
      <p>
        <Link to="/rollouts">← All rollouts</Link>
      </p>
      <h1>Rollout {rollout.name}</h1>
      {notice && <Alert kind="info">{notice}</Alert>}
      <div className="grid">
        <Card title="Status">
          <dl className="facts">
            <dt>Status</dt>
            <dd>
              <span className={`badge badge-${rollout.status}`} data-testid="rollout-status">
                {rollout.status}
              </span>
            </dd>
            <dt>Progress</dt>
            <dd>
              <Progress rollout={rollout} label="Devices updated" />
            </dd>
            <dt>Thresholds</dt>
            <dd>
              succeed at {Math.round(rollout.successThreshold * 100)}%, halt at {Math.round(rollout.failureThreshold * 100)}% failed
            </dd>
            <dt>Devices</dt>
            <dd>
              {rollout.deviceCount.toLocaleString('en')} enrolled
              {rollout.skippedCount > 0 && `, ${rollout.skippedCount} skipped (in another rollout)`}
              {rollout.retrying > 0 && `, ${rollout.retrying} waiting to retry`}
            </dd>
            <dt>Started</dt>
            <dd>
              <When at={rollout.createdAt} />
            </dd>
            <dt>Finished</dt>
            <dd>
              <When at={rollout.finishedAt} never="not yet" />
            </dd>
          </dl>
          <div className="actions">
            {actions.map((action) => (
              <Button key={action} variant={action === 'resume' ? 'primary' : 'danger'} onClick={() => setSteering(action)}>
                {`${STEER_TEXT[action].label}…`}
              </Button>
            ))}
          </div>
        </Card>
        <Card title="Phases">
          <ol className="phases">
            {rollout.phases.map((phase, index) => (
              <li key={index} aria-current={index === rollout.currentPhase && !FINISHED.includes(rollout.status) ? 'step' : undefined}>
                {phase.percent}% of the devices, soak {Math.round(phase.soakSeconds / 60)} min —{' '}
                {index < rollout.currentPhase || rollout.status === 'completed'
                  ? 'done'
                  : index === rollout.currentPhase
                    ? `current since ${rollout.phaseStartedAt.slice(0, 16).replace('T', ' ')} UTC`
                    : 'waiting'}
              </li>
            ))}
          </ol>
        </Card>
        <Card title="Devices by state, all phases">
          <BarChart title="Devices by state, all phases" bars={bars(rollout.counts)} />
        </Card>
        <Card title="Devices by state, phases reached">
          <BarChart title="Devices by state, phases reached" bars={bars(rollout.currentPhaseCounts)} />
        </Card>
      </div>
      {/* Reloaded when the rollout changes or any device changes state (the counts move), not only on a status change. */}
      <RolloutDevices path={path} version={`${rollout.updatedAt} ${JSON.stringify(rollout.counts)} ${rollout.retrying}`} />
      <ConfirmAction
        action={steering}
        actions={STEER_TEXT}
        subject={`rollout ${rollout.name}`}
        onClose={() => setSteering(null)}
        variant={steering === 'resume' ? 'primary' : 'danger'}
        onConfirm={async (action) => {
          const done = await api<RolloutView>('POST', `${path}/${action}`);
          setSteering(null);
          setNotice(`Rollout ${done.name} is ${done.status}.`);
          await load();
        }}
      />
    </>
  );
}

function RolloutDevices(props: { path: string; version: string }) {
  const [state, setState] = useState('');
  const [error, setError] = useState<string | null>(null);
  const { path, version } = props;
  const load = useCallback(
    (cursor: string | null) =>
      api<{ devices: RolloutDeviceView[]; nextCursor: string | null }>('GET', `${path}/devices${query({ state, cursor, limit: 50 })}`),
    // `version` changes when the rollout does (a phase advanced, a device updated): the page loads again.
    [path, version, state],
  );
  const { paging, shown } = useCursorPages(load, setError);

  return (
    <Card title="Devices">
      <Select
        label="State"
        value={state}
        onChange={(value) => {
          setState(value);
          paging.reset();
        }}
        options={[{ value: '', label: 'Any state' }, ...ROLLOUT_DEVICE_STATES.map((s) => ({ value: s, label: s }))]}
      />
      {error && <Alert>{error}</Alert>}
      {shown && (
        <>
          <Table
            label="Devices of the rollout"
            caption={`Devices of the rollout, page ${shown.number}`}
            columns={['Device', 'Phase', 'State', 'Attempts', 'Error', 'Updated']}
          >
            {shown.rows.devices.map((device) => (
              <tr key={device.deviceId} data-testid="rollout-device">
                <td>
                  <Link to={`/devices/${encodeURIComponent(device.deviceId)}`}>
                    <code>{device.deviceId}</code>
                  </Link>
                </td>
                <td>{device.phase + 1}</td>
                <td>
                  <span className={`badge badge-${device.state}`}>{device.state}</span>
                </td>
                <td>{device.attempts}</td>
                <td className="wrap">{device.error ? `${device.error.code}: ${device.error.message}` : '—'}</td>
                <td>
                  <When at={device.updatedAt} />
                </td>
              </tr>
            ))}
          </Table>
          {shown.rows.devices.length === 0 && <p>No device in this state.</p>}
          <Pager paging={paging} shown={shown} />
        </>
      )}
    </Card>
  );
}
