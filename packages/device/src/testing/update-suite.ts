/**
 * A test suite's update world: its `before` makes a test PKI and starts the update fixture server,
 * its `after` stops the server and removes the suite's temp directory. Read `pki` and `fixture`
 * inside tests (they are set once `before` has run).
 */
import { after, before } from 'node:test';
import { tempDir } from './temp.js';
import { UpdateFixture } from './update-fixture.js';
import { makeTestPki, type TestPki } from './update-pki.js';

export interface UpdateSuite {
  pki: TestPki;
  fixture: UpdateFixture;
  temp: { dir: string; remove(): void };
}

export function useUpdateFixture(prefix: string): UpdateSuite {
  const suite = { temp: tempDir(prefix) } as UpdateSuite;
  before(async () => {
    suite.pki = await makeTestPki();
    suite.fixture = await UpdateFixture.start(suite.pki);
  });
  after(async () => {
    await suite.fixture?.close();
    suite.temp.remove();
  });
  return suite;
}
