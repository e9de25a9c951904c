/**
 * Add a device: the consumer scans the QR code on the box (./ScanCode.tsx) or types the claim code
 * (16 characters, dashes optional) after pressing the device's pairing button, which opens its
 * claim window for 2 minutes (docs/binding.md). A wrong, used or already-claimed code gets its own
 * plain explanation. The box label's link (`/app/add?product=…#code=…`, opened by the phone's own
 * camera app) fills the code in: it is read from the fragment once, when the app starts
 * (`takeLabelCode`), and the fragment is dropped from the address bar so the code stays out of
 * the history. Before adding, the product ID from the box (or `?product=` in the label's link, or
 * the label scanned) shows what the product collects and why (the claim code itself names no
 * product until it is used).
 */
import { useEffect, useState } from 'react';
import { readClaimLabel } from '@bulwark/protocol';
import { Alert, Button, Card, Field } from '../../kit';
import { BASE, navigate } from '../../router';
import { my, type PrivacyView } from '../api';
import { useAction } from '../ui';
import { ProductCollects } from './Privacy';
import { ScanCode } from './ScanCode';

/** The claim code of the label link the app was opened with, kept in memory only. */
let labelCode = '';

/**
 * At start (main.tsx), before anything renders: on the Add a device page, takes a claim code from
 * the fragment (`#code=`) and drops the fragment from the address bar (and so from the history).
 * A fragment with anything but a well-formed code fills nothing in.
 */
export function takeLabelCode(): void {
  if (window.location.pathname !== `${BASE}/add` || !new URLSearchParams(window.location.hash.slice(1)).has('code')) return;
  const label = readClaimLabel(window.location.href, window.location.origin);
  if (label.kind === 'code') labelCode = label.code;
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
}

export function AddDevice() {
  const [code, setCode] = useState(labelCode);
  const [scanned, setScanned] = useState(false);
  const [product, setProduct] = useState(() => new URLSearchParams(window.location.search).get('product'));
  const { busy, error, submit } = useAction();
  return (
    <>
      <h1>Add a device</h1>
      <ol className="steps">
        <li>Switch the device on and connect it to the internet.</li>
        <li>Press its pairing button.</li>
        <li>Within 2 minutes, scan the QR code or type the code printed on the box or under the device.</li>
      </ol>
      <ScanCode
        onCode={(read, productId) => {
          setCode(read);
          setScanned(true);
          if (productId) setProduct(productId);
        }}
      />
      <form
        onSubmit={submit(async () => {
          const device = await my.claim(code.trim());
          labelCode = '';
          navigate(`/devices/${encodeURIComponent(device.id)}`);
        })}
      >
        {error && <Alert>{error.message}</Alert>}
        {scanned && !error && <Alert kind="info">Code read from the QR code. Once the pairing button is pressed, add the device.</Alert>}
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
      <BeforeAdding fromLabel={product} />
    </>
  );
}

/** What the product collects: `fromLabel` (the label's link or the label scanned) is read at once. */
function BeforeAdding(props: { fromLabel: string | null }) {
  const [productId, setProductId] = useState(props.fromLabel ?? '');
  const [privacy, setPrivacy] = useState<PrivacyView | null>(null);
  const { busy, error, run, submit } = useAction();
  const read = async (id: string) => {
    setPrivacy(null);
    setPrivacy(await my.productPrivacy(id.trim()));
  };
  const { fromLabel } = props;
  useEffect(() => {
    if (!fromLabel) return;
    setProductId(fromLabel);
    void run(() => read(fromLabel));
  }, [run, fromLabel]);
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
