/**
 * The latest-metadata cache's promises, on a clock the test moves: this process's own writes are
 * served at once, another process's once the entry is a second old, and a read that started before
 * a write never stores what it read.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LATEST_METADATA_TTL_MS, LatestMetadataCache } from './latest-cache.js';
import type { MetadataRow } from './metadata-store.js';

const row = (version: number): MetadataRow => ({
  organization_id: 'org',
  role: 'timestamp',
  version,
  json: `{"v":${version}}`,
  expires_at: 0,
  created_at: 0,
});

/** A database of one row that counts its reads; `pause` holds the next read until released. */
function table(version: number) {
  const state = { version, reads: 0, hold: null as Promise<void> | null };
  const read = async () => {
    state.reads++;
    const seen = state.version;
    if (state.hold) await state.hold;
    return row(seen);
  };
  return { state, read };
}

describe('latest TUF metadata kept in the process', () => {
  it('reads once per second at most, and serves a write of another process once its copy is a second old', async () => {
    let now = 0;
    const cache = new LatestMetadataCache(() => now);
    const db = table(1);
    assert.equal((await cache.latest('org', 'timestamp', db.read))?.version, 1);
    db.state.version = 2; // written by another node
    now += LATEST_METADATA_TTL_MS - 1;
    assert.equal((await cache.latest('org', 'timestamp', db.read))?.version, 1, 'within the second: the copy');
    assert.equal(db.state.reads, 1);
    now += 1;
    assert.equal((await cache.latest('org', 'timestamp', db.read))?.version, 2, 'after it: read again');
    assert.equal(db.state.reads, 2);
  });

  it("serves this process's own write at once, and keeps absence until then", async () => {
    const cache = new LatestMetadataCache(() => 0);
    const stored: { row?: MetadataRow } = {};
    const read = async () => stored.row;
    assert.equal(await cache.latest('org', 'root', read), null);
    stored.row = row(1);
    assert.equal(await cache.latest('org', 'root', read), null, 'absence is kept too');
    cache.forget('org');
    assert.equal((await cache.latest('org', 'root', read))?.version, 1);
  });

  it('forgets one organization, not the others', async () => {
    const cache = new LatestMetadataCache(() => 0);
    const a = table(1);
    const b = table(1);
    await cache.latest('a', 'timestamp', a.read);
    await cache.latest('b', 'timestamp', b.read);
    a.state.version = 2;
    b.state.version = 2;
    cache.forget('a');
    assert.equal((await cache.latest('a', 'timestamp', a.read))?.version, 2);
    assert.equal((await cache.latest('b', 'timestamp', b.read))?.version, 1);
  });

  it('does not keep what a read started before a write saw', async () => {
    const cache = new LatestMetadataCache(() => 0);
    const db = table(1);
    let release!: () => void;
    db.state.hold = new Promise((resolve) => (release = resolve));
    const early = cache.latest('org', 'timestamp', db.read); // reads version 1, then waits
    await Promise.resolve();
    db.state.version = 2;
    cache.forget('org'); // the write, while that read is under way
    db.state.hold = null;
    release();
    assert.equal((await early)?.version, 1, 'the early read answers what it saw');
    assert.equal((await cache.latest('org', 'timestamp', db.read))?.version, 2, 'but did not keep it');
  });
});
