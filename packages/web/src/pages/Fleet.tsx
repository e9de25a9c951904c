/**
 * Fleet overview: devices in all, online now, and bar charts of devices by status, by product
 * and by firmware version (GET /fleet/summary, product names from GET /products); below them the
 * active rollouts, open findings by severity and the telemetry ingest rate (./FleetActivity.tsx).
 */
import { useEffect, useState } from 'react';
import { api, type FleetSummaryView, type ProductView } from '../api';
import { Alert, BarChart, Card } from '../kit';
import { FleetActivity } from './FleetActivity';

export function Fleet() {
  const [summary, setSummary] = useState<FleetSummaryView | null>(null);
  const [products, setProducts] = useState<ProductView[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    Promise.all([api<FleetSummaryView>('GET', '/fleet/summary'), api<{ products: ProductView[] }>('GET', '/products')])
      .then(([fleet, list]) => {
        setSummary(fleet);
        setProducts(list.products);
      })
      .catch((caught: Error) => setError(caught.message));
  }, []);

  const productName = (id: string) => products.find((product) => product.id === id)?.name ?? id;
  return (
    <>
      <h1>Fleet</h1>
      {error && <Alert>{error}</Alert>}
      {summary && (
        <>
          <dl className="stats">
            <div>
              <dt>Devices</dt>
              <dd data-testid="total">{summary.total.toLocaleString('en')}</dd>
            </div>
            <div>
              <dt>Online now</dt>
              <dd data-testid="online">{summary.online.toLocaleString('en')}</dd>
            </div>
            <div>
              <dt>Quarantined</dt>
              <dd>{(summary.byStatus.find((s) => s.status === 'quarantined')?.count ?? 0).toLocaleString('en')}</dd>
            </div>
          </dl>
          <div className="grid">
            <Card title="Devices by status">
              <BarChart title="Devices by status" bars={summary.byStatus.map((s) => ({ label: s.status, value: s.count }))} />
            </Card>
            <Card title="Devices by product">
              <BarChart
                title="Devices by product"
                bars={summary.byProduct.map((p) => ({ label: productName(p.productId), value: p.count }))}
              />
            </Card>
            <Card title="Firmware versions">
              <BarChart
                title="Firmware versions"
                bars={summary.byFirmware.map((f) => ({ label: f.version ?? 'unknown', value: f.count }))}
              />
            </Card>
          </div>
          <FleetActivity />
        </>
      )}
    </>
  );
}
