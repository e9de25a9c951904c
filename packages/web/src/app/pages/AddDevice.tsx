/**
 * Add a device: the consumer types the claim code from the box (16 characters, dashes optional)
 * after pressing the device's pairing button, which opens its claim window for 2 minutes
 * (docs/binding.md). A wrong, used or already-claimed code gets its own plain explanation.
 */
import { useState } from 'react';
import { Alert, Button, Field } from '../../kit';
import { navigate } from '../../router';
import { my } from '../api';
import { useAction } from '../ui';

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
    </>
  );
}
