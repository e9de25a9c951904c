/**
 * The device list: search by serial prefix, filter by status, product and tag, keyset paging
 * over the API's cursor (a stack of the cursors seen gives "Previous"). Filters live in the URL.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { api, DEVICE_STATUSES, query, type DeviceView, type ProductView } from '../api';
import { Alert, Button, Field, Link, Select } from '../kit';

const PAGE = 50;

export function Devices() {
  const params = new URLSearchParams(window.location.search);
  const [serial, setSerial] = useState(params.get('serialPrefix') ?? '');
  const [status, setStatus] = useState(params.get('status') ?? '');
  const [productId, setProductId] = useState(params.get('productId') ?? '');
  const [tag, setTag] = useState(params.get('tag') ?? '');
  const [filters, setFilters] = useState({ serialPrefix: serial, status, productId, tag });
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [page, setPage] = useState<{ devices: DeviceView[]; nextCursor: string | null } | null>(null);
  const [products, setProducts] = useState<ProductView[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api<{ products: ProductView[] }>('GET', '/products')
      .then((list) => setProducts(list.products))
      .catch(() => undefined);
  }, []);

  const cursor = cursors[cursors.length - 1] ?? null;
  useEffect(() => {
    setError(null);
    api<{ devices: DeviceView[]; nextCursor: string | null }>('GET', `/devices${query({ ...filters, cursor, limit: PAGE })}`)
      .then(setPage)
      .catch((caught: Error) => setError(caught.message));
  }, [filters, cursor]);

  const search = (event: FormEvent) => {
    event.preventDefault();
    const next = { serialPrefix: serial.trim(), status, productId, tag: tag.trim() };
    window.history.replaceState(null, '', `${window.location.pathname}${query(next)}`);
    setFilters(next);
    setCursors([null]);
  };

  const productName = (id: string) => products.find((product) => product.id === id)?.name ?? id;
  return (
    <>
      <h1>Devices</h1>
      <form className="filters" onSubmit={search} role="search" aria-label="Find devices">
        <Field label="Serial starts with" type="search" value={serial} onChange={setSerial} name="serial" />
        <Select
          label="Status"
          value={status}
          onChange={setStatus}
          options={[{ value: '', label: 'Any status' }, ...DEVICE_STATUSES.map((s) => ({ value: s, label: s }))]}
        />
        <Select
          label="Product"
          value={productId}
          onChange={setProductId}
          options={[{ value: '', label: 'Any product' }, ...products.map((p) => ({ value: p.id, label: p.name }))]}
        />
        <Field label="Tag" value={tag} onChange={setTag} name="tag" />
        <Button type="submit">Search</Button>
      </form>
      {error && <Alert>{error}</Alert>}
      {page && (
        <>
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Devices, page {cursors.length}</caption>
              <thead>
                <tr>
                  <th scope="col">Serial</th>
                  <th scope="col">Status</th>
                  <th scope="col">Product</th>
                  <th scope="col">Firmware</th>
                  <th scope="col">Tags</th>
                </tr>
              </thead>
              <tbody>
                {page.devices.map((device) => (
                  <tr key={device.id}>
                    <td>
                      <Link to={`/devices/${encodeURIComponent(device.id)}`}>{device.serial}</Link>
                    </td>
                    <td>
                      <span className={`badge badge-${device.status}`}>{device.status}</span>
                    </td>
                    <td>{productName(device.productId)}</td>
                    <td>{device.firmwareVersion ?? '—'}</td>
                    <td>{device.tags.join(', ')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {page.devices.length === 0 && <p>No device matches.</p>}
          <nav className="pager" aria-label="Pages">
            <Button variant="secondary" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
              Previous
            </Button>
            <span>Page {cursors.length}</span>
            <Button variant="secondary" disabled={!page.nextCursor} onClick={() => setCursors([...cursors, page.nextCursor])}>
              Next
            </Button>
          </nav>
        </>
      )}
    </>
  );
}
