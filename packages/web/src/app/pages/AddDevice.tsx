/**
 * Add a device: the consumer types the claim code from the box (16 characters, dashes optional)
 * after pressing the device's pairing button, which opens its claim window for 2 minutes
 * (docs/binding.md). A wrong, used or already-claimed code gets its own plain explanation.
 * Before that, the product ID from the box (or `?product=` in the link a QR code opens) shows what
 * the product collects and why (the claim code itself names no product until it is used).
 */
import { useEffect, useState } from 'react';
import { Alert, Button, Card, Field } from '../../kit';
import { navigate } from '../../router';
import { my, type PrivacyView } from '../api';
import { useAction } from '../ui';
import { ProductCollects } from './Privacy';

export function AddDevice() {
  const [code, setCode] = useState('');
  const { busy, error, submit } = useAction();
  return (
    <>
      <h1>Add a device</h1>
      <ol className="steps">
        <li>Switch the device on and connect it to the internet.</li>
        <li>Press its pairing button.</li>
        <li>Within 2 minutes, type the code printed on the box or under the device.</li>
      </ol>
      <form
        onSubmit={submit(async () => {
          const device = await my.claim(code.trim());
          navigate(`/devices/${encodeURIComponent(device.id)}`);
        })}
      >
        {error && <Alert>{error.message}</Alert>}
        <Field
          label="Claim code"
          value={code}
          onChange={setCode}
          autoComplete="off"
          required
          name="claim-code"
          hint="16 letters and digits, like 7QK2-M9XD-4F0A-C1RZ"
        />
        <Button type="submit" disabled={busy}>
          Add device
        </Button>
      </form>
      <BeforeAdding />
    </>
  );
}

function BeforeAdding() {
  const [productId, setProductId] = useState(() => new URLSearchParams(window.location.search).get('product') ?? '');
  const [privacy, setPrivacy] = useState<PrivacyView | null>(null);
  const { busy, error, run, submit } = useAction();
  const read = async (id: string) => {
    setPrivacy(null);
    setPrivacy(await my.productPrivacy(id.trim()));
  };
  useEffect(() => {
    const fromLink = new URLSearchParams(window.location.search).get('product');
    if (fromLink) void run(() => read(fromLink));
  }, [run]);
  return (
    <Card title="What it collects">
      <form onSubmit={submit(() => read(productId))}>
        {error && (
          <Alert>{error.code === 'resource.not_found' ? 'No product has this ID. Check it against the box.' : error.message}</Alert>
        )}
        <Field
          label="Product ID"
          value={productId}
          onChange={setProductId}
          required
          name="product"
          hint="On the box, beside the claim code"
        />
        <Button type="submit" variant="secondary" disabled={busy}>
          Show what it collects
        </Button>
      </form>
      {privacy && <ProductCollects privacy={privacy} />}
    </Card>
  );
}
