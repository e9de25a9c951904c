import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { organizationId } from '../testing/accounts.js';
import { ENGINES } from '../testing/engines.js';
import { ownerSession, startTestPlatform, type TestPlatform } from '../testing/server.js';

const BODY_LIMIT = 64 * 1024;

for (const engine of ENGINES) {
  describe(`device bulk import [${engine.engine}]`, { skip: engine.skip }, () => {
    let t: TestPlatform;
    let token: string;
    let sensor: string;
    before(async () => {
      t = await startTestPlatform(engine, { http: { bodyLimitBytes: BODY_LIMIT } });
      token = (await ownerSession(t)).token;
      sensor = (await t.client().post('/api/v1/products', { name: 'Sensor' }, { token })).body.id;
    });
    after(() => t?.close());

    const upload = (body: string, type = 'application/x-ndjson') =>
      t.client().request('POST', '/api/v1/devices/import', { raw: body, headers: { 'content-type': type }, token });
    const count = async (prefix: string) =>
      (await t.platform.db.selectFrom('devices').select('serial').where('serial', 'like', `${prefix}%`).execute()).length;
    const lines = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, i) => JSON.stringify({ serial: `${prefix}-${i + 1}`, productId: sensor, tags: ['batch'] }));

    it('imports nothing when line 3 of 5 is bad, names line 3, then imports the corrected file whole', async () => {
      const rows = lines('NDJ', 5);
      const bad = [...rows.slice(0, 2), JSON.stringify({ serial: 'NDJ 3', productId: sensor, tags: 'oops' }), ...rows.slice(3)];
      const rejected = await upload(bad.join('\n'));
      assert.equal(rejected.status, 400, rejected.text);
      assert.equal(rejected.body.error.code, 'device.import_rejected');
      assert.equal(rejected.body.error.details.rows, 5);
      assert.deepEqual(
        rejected.body.error.details.errors.map((e: { line: number; problems: { field: string }[] }) => [
          e.line,
          e.problems.map((p) => p.field),
        ]),
        [[3, ['serial', 'tags']]],
      );
      assert.match(rejected.body.error.message, /line 3/);
      assert.equal(await count('NDJ'), 0);

      const accepted = await upload(rows.join('\n') + '\n');
      assert.equal(accepted.status, 200, accepted.text);
      assert.deepEqual(accepted.body, { imported: 5 });
      assert.equal(await count('NDJ'), 5);
      const listed = await t.client().get('/api/v1/devices?tag=batch&serialPrefix=NDJ-', { token });
      assert.equal(listed.body.devices.length, 5);
      const audit = (await t.platform.audit.query({ organizationId: await organizationId(t), limit: 10 })).entries;
      const imported = audit.find((e) => e.action === 'device.imported')!;
      assert.deepEqual(imported.details, { format: 'ndjson', imported: 5 });
      const refused = audit.find((e) => e.action === 'device.import_rejected')!;
      assert.equal(refused.outcome, 'failure');
      assert.equal(refused.details.firstLine, 3);
    });

    it('reports serials repeated in the file and serials already registered, each by line, and imports none', async () => {
      await t.client().post('/api/v1/devices', { serial: 'DUP-OLD', productId: sensor }, { token });
      const body = [
        JSON.stringify({ serial: 'DUP-A', productId: sensor }),
        JSON.stringify({ serial: 'DUP-OLD', productId: sensor }),
        'not json',
        JSON.stringify({ serial: 'DUP-A', product: 'Sensor' }),
        JSON.stringify({ serial: 'DUP-B', product: 'Nope', owner: 'x' }),
      ].join('\n');
      const res = await upload(body);
      assert.equal(res.status, 400);
      const report = res.body.error.details.errors.map((e: { line: number; problems: { field: string; problem: string }[] }) => [
        e.line,
        e.problems.map((p) => `${p.field} ${p.problem}`),
      ]);
      assert.deepEqual(report, [
        [2, ['serial is already registered in this organization']],
        [3, ['row is not valid JSON']],
        [4, ['serial duplicates line 1 of this file']],
        [5, ['owner is not a device field', 'product must name a product of this organization']],
      ]);
      assert.equal(await count('DUP-'), 1);
    });

    it('imports CSV with a header, product names, tags and quoted JSON attributes', async () => {
      const csv = [
        'serial,product,group,tags,attributes',
        'CSV-1,Sensor,lab,a;b,"{""site"":""Oslo, NO""}"',
        'CSV-2,Sensor,,,',
        `CSV-3,${sensor},,,`,
      ].join('\r\n');
      const wrongColumn = await upload(csv, 'text/csv');
      assert.equal(wrongColumn.status, 400, 'a product ID in the product (name) column is unknown');
      assert.deepEqual(
        wrongColumn.body.error.details.errors.map((e: { line: number }) => e.line),
        [4],
      );
      const res = await upload(csv.replace(`CSV-3,${sensor}`, 'CSV-3,Sensor'), 'text/csv; charset=utf-8');
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.imported, 3);
      const [first] = (await t.client().get('/api/v1/devices?serialPrefix=CSV-1', { token })).body.devices;
      assert.deepEqual([first.group, first.tags, first.attributes], ['lab', ['a', 'b'], { site: 'Oslo, NO' }]);
    });

    it('refuses other media types, an empty file, and a body over the limit (413) without importing', async () => {
      assert.equal((await upload('{"serial":"X"}', 'application/json')).status, 415);
      assert.equal((await upload('serial\nX', 'text/plain')).status, 415);
      assert.equal((await upload('\n\n')).status, 400);
      const big = lines('BIG', 2000).join('\n');
      assert.ok(big.length > BODY_LIMIT);
      const res = await upload(big);
      assert.equal(res.status, 413, res.text);
      assert.equal(res.body.error.code, 'request.too_large');
      assert.equal(await count('BIG'), 0);
    });
  });
}
