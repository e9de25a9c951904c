/**
 * The command console of one device: choose one of the commands its product declares, fill its
 * parameters (a field per parameter, typed), send it, and watch its outcome (pending until the
 * device answers: succeeded, failed, rejected, or timed out). Without a declaration, any command
 * name with JSON parameters. The device's recent commands are listed below. A refusal (an
 * offline device, a role without devices:write) is shown with the API's reason.
 */
import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { api, type CommandDeclaration, type CommandView } from '../../api';
import { Alert, Button, Card, Field, messageOf, Select, Table, When } from '../../kit';

type ParamValues = Record<string, string | boolean>;
/** How long each GET waits for the outcome (the API allows up to 30 s). */
const WAIT_MS = 10_000;

/** The form's text turned into the command's JSON parameters, or a message saying which one is wrong. */
export function paramsOf(declaration: CommandDeclaration, values: ParamValues): Record<string, unknown> | string {
  const params: Record<string, unknown> = {};
  for (const param of declaration.params) {
    const raw = values[param.name];
    if (param.type === 'boolean') {
      params[param.name] = raw === true;
      continue;
    }
    if (raw === undefined || raw === '') {
      if (param.required) return `${param.name} is required`;
      continue;
    }
    if (param.type === 'string') params[param.name] = raw;
    else {
      const number = Number(raw);
      if (!Number.isFinite(number) || (param.type === 'integer' && !Number.isInteger(number)))
        return `${param.name} must be ${param.type === 'integer' ? 'a whole number' : 'a number'}`;
      params[param.name] = number;
    }
  }
  return params;
}

function Checkbox(props: { label: string; checked: boolean; onChange: (checked: boolean) => void }) {
  const id = useId();
  return (
    <div className="field field-check">
      <input id={id} type="checkbox" checked={props.checked} onChange={(event) => props.onChange(event.target.checked)} />
      <label htmlFor={id}>{props.label}</label>
    </div>
  );
}

const OUTCOME: Record<CommandView['status'], string> = {
  pending: 'waiting for the device',
  succeeded: 'succeeded',
  failed: 'failed',
  rejected: 'rejected by the device',
  timed_out: 'timed out (no answer in time)',
};

const outcomeText = (command: CommandView) =>
  `${command.name}: ${OUTCOME[command.status]}${command.error ? ` (${command.error})` : ''}${
    command.result !== null && command.result !== undefined ? `, result ${JSON.stringify(command.result)}` : ''
  }`;

export function Commands(props: { deviceId: string; declared: CommandDeclaration[] | null; onSent: () => void }) {
  const path = `/devices/${encodeURIComponent(props.deviceId)}/commands`;
  const declared = props.declared;
  const [name, setName] = useState(declared?.[0]?.name ?? '');
  const [values, setValues] = useState<ParamValues>({});
  const [freeParams, setFreeParams] = useState('{}');
  const [recent, setRecent] = useState<CommandView[]>([]);
  const [current, setCurrent] = useState<CommandView | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setRecent((await api<{ commands: CommandView[] }>('GET', `${path}?limit=10`)).commands);
    } catch (caught) {
      setError(messageOf(caught));
    }
  }, [path]);
  useEffect(() => {
    void load();
  }, [load]);

  const declaration = declared?.find((command) => command.name === name) ?? null;

  const send = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    let params: Record<string, unknown> | string;
    if (declaration) params = paramsOf(declaration, values);
    else {
      try {
        params = JSON.parse(freeParams) as Record<string, unknown>;
      } catch {
        params = 'The parameters are not valid JSON';
      }
    }
    if (typeof params === 'string') {
      setError(params);
      return;
    }
    setBusy(true);
    try {
      let command = await api<CommandView>('POST', path, { name, params });
      setCurrent(command);
      props.onSent();
      // Wait for the answer in steps the API allows until the command's deadline. The steps are
      // counted from the platform's own times: this browser's clock may not agree with the platform's.
      const steps = Math.ceil((Date.parse(command.expiresAt) - Date.parse(command.createdAt)) / WAIT_MS) + 1;
      for (let step = 0; step < steps && command.status === 'pending'; step++) {
        command = await api<CommandView>('GET', `${path}/${encodeURIComponent(command.id)}?waitMs=${WAIT_MS}`);
        setCurrent(command);
      }
      void load();
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Commands">
      <form onSubmit={(event) => void send(event)} aria-label="Send a command">
        {declared ? (
          <>
            <Select
              label="Command"
              value={name}
              onChange={(value) => {
                setName(value);
                setValues({});
              }}
              options={declared.map((command) => ({ value: command.name, label: command.name }))}
            />
            {declaration?.description && <p className="hint">{declaration.description}</p>}
            {declaration?.params.map((param) =>
              param.type === 'boolean' ? (
                <Checkbox
                  key={param.name}
                  label={param.name}
                  checked={values[param.name] === true}
                  onChange={(checked) => setValues({ ...values, [param.name]: checked })}
                />
              ) : (
                <Field
                  key={param.name}
                  label={`${param.name}${param.required ? ' (required)' : ''}`}
                  type={param.type === 'string' ? 'text' : 'number'}
                  value={String(values[param.name] ?? '')}
                  onChange={(value) => setValues({ ...values, [param.name]: value })}
                  hint={param.description || `${param.type}`}
                />
              ),
            )}
            {declared.length === 0 && <p>The product declares no command.</p>}
          </>
        ) : (
          <>
            <p className="hint">The product declares no commands: any name is sent, with JSON parameters.</p>
            <Field label="Command" value={name} onChange={setName} required />
            <Field label="Parameters (JSON)" value={freeParams} onChange={setFreeParams} rows={3} />
          </>
        )}
        {error && <Alert>{error}</Alert>}
        <div className="actions">
          <Button type="submit" disabled={busy || !name}>
            Send command
          </Button>
        </div>
      </form>
      <p role="status" data-testid="command-outcome" className="outcome">
        {current ? outcomeText(current) : ''}
      </p>
      <Table
        label="Recent commands"
        caption="The device's latest commands, newest first"
        columns={['Command', 'Parameters', 'Outcome', 'Sent']}
      >
        {recent.map((command) => (
          <tr key={command.id} data-testid="command">
            <td>
              <code>{command.name}</code>
            </td>
            <td>
              <code>{JSON.stringify(command.params)}</code>
            </td>
            <td>{outcomeText(command).slice(command.name.length + 2)}</td>
            <td>
              <When at={command.createdAt} />
            </td>
          </tr>
        ))}
      </Table>
      {recent.length === 0 && <p>No command sent yet.</p>}
    </Card>
  );
}
