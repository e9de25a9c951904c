/**
 * Products and the commands their devices take: pick a product (GET /products), read its declared
 * commands (each with its typed parameters), and, for roles with devices:write, replace the
 * declaration (edited as JSON: an array of {name, description, params: [{name, type, required,
 * description}]}) or withdraw it (any command name is sent again), each behind a confirmation:
 * PUT /products/:id/commands, which checks every entry and writes nothing when one is wrong (its
 * message names the field). The device page's command console offers what is declared here.
 */
import { useCallback, useEffect, useState } from 'react';
import { api, roleHolds, type CommandDeclaration, type ProductView, type UserView } from '../api';
import { Alert, Button, Card, ConfirmDialog, Field, messageOf, Select, Table } from '../kit';

const TEMPLATE: CommandDeclaration[] = [
  { name: 'identify', description: 'Blink the light', params: [] },
  {
    name: 'set-brightness',
    description: 'Set the light level',
    params: [{ name: 'level', type: 'integer', required: true, description: '0 to 100' }],
  },
];

const asJson = (commands: CommandDeclaration[] | null | undefined) => JSON.stringify(commands ?? TEMPLATE, null, 2);

export function Products(props: { user: UserView }) {
  const [products, setProducts] = useState<ProductView[]>([]);
  const [chosen, setChosen] = useState('');
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    api<{ products: ProductView[] }>('GET', '/products')
      .then((answer) => {
        setProducts(answer.products);
        setChosen((current) => current || answer.products[0]?.id || '');
      })
      .catch((caught: unknown) => setError(messageOf(caught)));
  }, []);
  useEffect(load, [load]);
  const product = products.find((p) => p.id === chosen);

  return (
    <>
      <h1>Products</h1>
      {error && <Alert>{error}</Alert>}
      {products.length === 0 ? (
        <p>No product yet.</p>
      ) : (
        <Select label="Product" value={chosen} onChange={setChosen} options={products.map((p) => ({ value: p.id, label: p.name }))} />
      )}
      {product && (
        <ProductCommands key={product.id} product={product} mayWrite={roleHolds(props.user.role, 'devices:write')} onSaved={load} />
      )}
    </>
  );
}

function ProductCommands(props: { product: ProductView; mayWrite: boolean; onSaved: () => void }) {
  const { product } = props;
  const [text, setText] = useState(asJson(product.commands));
  const [parsed, setParsed] = useState<unknown>(null);
  const [asking, setAsking] = useState<'declare' | 'withdraw' | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);

  const review = () => {
    setSaved(null);
    try {
      const value = JSON.parse(text) as unknown;
      if (!Array.isArray(value)) throw new Error('the declaration is a JSON array of commands');
      setProblem(null);
      setParsed(value);
      setAsking('declare');
    } catch (caught) {
      setProblem(`Not a declaration: ${(caught as Error).message}`);
    }
  };
  const names = Array.isArray(parsed) ? parsed.map((c: { name?: unknown }) => String(c?.name)) : [];

  return (
    <Card title={`Commands of ${product.name}`}>
      {saved && <Alert kind="info">{saved}</Alert>}
      {product.commands ? (
        <Table
          label={`Commands of ${product.name}`}
          caption={`Commands declared for ${product.name}`}
          columns={['Command', 'Parameters', 'Description']}
        >
          {product.commands.map((command) => (
            <tr key={command.name} data-testid="declared-command">
              <td>
                <code>{command.name}</code>
              </td>
              <td className="wrap">
                {command.params.length === 0
                  ? 'none'
                  : command.params.map((p) => `${p.name}: ${p.type}${p.required ? ' (required)' : ''}`).join(', ')}
              </td>
              <td className="wrap">{command.description}</td>
            </tr>
          ))}
        </Table>
      ) : (
        <p data-testid="no-declaration">No commands declared: devices of this product are sent any command name.</p>
      )}
      {props.mayWrite && (
        <form
          aria-label={`Declare the commands of ${product.name}`}
          className="stack"
          onSubmit={(event) => {
            event.preventDefault();
            review();
          }}
        >
          {problem && <Alert>{problem}</Alert>}
          <Field
            label="Declaration (JSON)"
            rows={14}
            value={text}
            onChange={setText}
            hint="An array of {name, description, params: [{name, type: string | number | integer | boolean, required, description}]}; the platform then refuses any other command or parameter"
          />
          <div className="row-actions">
            <Button type="submit">Declare commands…</Button>
            {product.commands && (
              <Button variant="secondary" onClick={() => setAsking('withdraw')}>
                Withdraw the declaration…
              </Button>
            )}
          </div>
        </form>
      )}
      <ConfirmDialog
        title={asking === 'withdraw' ? `Withdraw the commands of ${product.name}?` : `Declare the commands of ${product.name}?`}
        open={asking !== null}
        onClose={() => setAsking(null)}
        confirmLabel={asking === 'withdraw' ? 'Withdraw' : 'Declare commands'}
        variant={asking === 'withdraw' ? 'danger' : 'primary'}
        onConfirm={async () => {
          const commands = asking === 'withdraw' ? null : parsed;
          const answer = await api<ProductView>('PUT', `/products/${encodeURIComponent(product.id)}/commands`, { commands });
          setAsking(null);
          setText(asJson(answer.commands));
          setSaved(
            answer.commands ? `Declared: ${answer.commands.map((c) => c.name).join(', ') || 'no command'}.` : 'Declaration withdrawn.',
          );
          props.onSaved();
        }}
      >
        <p>
          {asking === 'withdraw'
            ? 'Its devices are then sent any command name, with any parameters.'
            : `Its devices then take only ${names.join(', ') || 'no command at all'}: the platform refuses any other command or parameter.`}
        </p>
      </ConfirmDialog>
    </Card>
  );
}
