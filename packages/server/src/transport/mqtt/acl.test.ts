import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DeviceStatus } from '../../devices/model.js';
import {
  authorizeChildPublish,
  authorizeChildSubscribe,
  authorizeDevicePublish,
  authorizeDeviceSubscribe,
  mayDeliver,
  mayDeliverToGateway,
} from './acl.js';

const ME = 'dev-1';

describe('device ACL', () => {
  it('lets a device publish on its own channels', () => {
    for (const topic of [
      'd/dev-1/telemetry',
      'd/dev-1/state/reported',
      'd/dev-1/commands/c-42/result',
      'd/dev-1/presence',
      'd/dev-1/binding/presence',
      'd/dev-1/binding/reset/result',
      'd/dev-1/updates/report',
    ]) {
      const decision = authorizeDevicePublish(ME, 'active', topic);
      assert.equal(decision.ok, true, topic);
    }
  });

  it('refuses publishing as another device, outside the scheme, or into $SYS', () => {
    for (const topic of [
      'd/dev-2/telemetry',
      'd/dev-1x/telemetry',
      'd/dev-1/telemetry/extra',
      'd/dev-1/other',
      'd/dev-1/state/desired',
      'd/dev-1/state/delta',
      'd/dev-1/errors',
      'd/dev-1/commands/c-1',
      'd/dev-1/commands/../result',
      'd/dev-1/binding/reset',
      'd/dev-2/binding/presence',
      'd/dev-1/binding',
      '$SYS/broker/x',
      'telemetry',
      'd/dev-1/',
      `d/dev-1/${'a/'.repeat(10)}x`,
      `d/dev-1/${'x'.repeat(300)}`,
    ]) {
      const decision = authorizeDevicePublish(ME, 'active', topic);
      assert.equal(decision.ok, false, topic);
    }
  });

  it('refuses a device publishing on the channels only the platform publishes on (updates/available)', () => {
    assert.equal(authorizeDevicePublish(ME, 'active', 'd/dev-1/updates/available').ok, false);
    assert.equal(authorizeDevicePublish(ME, 'quarantined', 'd/dev-1/updates/available').ok, false);
    assert.equal(authorizeDevicePublish(ME, 'active', 'd/dev-1/updates/status').ok, true);
  });

  it('closes everything but the update topics to a quarantined device, and everything to a disabled one', () => {
    assert.equal(authorizeDevicePublish(ME, 'quarantined', 'd/dev-1/telemetry').ok, false);
    assert.equal(authorizeDevicePublish(ME, 'quarantined', 'd/dev-1/updates/report').ok, true);
    assert.equal(authorizeDeviceSubscribe(ME, 'quarantined', 'd/dev-1/commands/+').ok, false);
    assert.equal(authorizeDeviceSubscribe(ME, 'quarantined', 'd/dev-1/#').ok, false);
    assert.equal(authorizeDeviceSubscribe(ME, 'quarantined', 'd/dev-1/updates/#').ok, true);
    assert.equal(authorizeDevicePublish(ME, 'disabled', 'd/dev-1/updates/report').ok, false);
    assert.equal(authorizeDeviceSubscribe(ME, 'retired', 'd/dev-1/updates/#').ok, false);
    assert.equal(mayDeliver(ME, 'quarantined', 'd/dev-1/commands/c1'), false);
    assert.equal(mayDeliver(ME, 'quarantined', 'd/dev-1/updates/targets'), true);
    assert.equal(mayDeliver(ME, 'active', 'd/dev-2/commands/c1'), false);
  });

  it('lets a device subscribe below its own prefix, wildcards included', () => {
    for (const filter of ['d/dev-1/commands/+', 'd/dev-1/#', 'd/dev-1/state/desired', 'd/dev-1/+/delta']) {
      assert.equal(authorizeDeviceSubscribe(ME, 'active', filter).ok, true, filter);
    }
  });

  it('refuses filters that reach beyond the device: #, +, $SYS, shared subscriptions, malformed wildcards', () => {
    for (const filter of [
      '#',
      '+/#',
      'd/#',
      'd/+/telemetry',
      'd/+/#',
      'd/dev-2/#',
      '$SYS/#',
      '$share/g/d/dev-1/#',
      '$share/g/#',
      'd/dev-1#',
      'd/dev-1/a#',
      'd/dev-1/#/x',
      'd/dev-1/a+/b',
      'd/dev-1/',
      '',
    ]) {
      assert.equal(authorizeDeviceSubscribe(ME, 'active', filter).ok, false, filter);
    }
  });
});

describe('gateway ACL (children of one gateway session)', () => {
  const children = new Map<string, DeviceStatus>([
    ['child-a', 'active'],
    ['child-q', 'quarantined'],
    ['child-d', 'disabled'],
  ]);
  const statusOf = (id: string) => children.get(id);

  it('lets a gateway act on its active children’s channels, and a quarantined child’s updates only', () => {
    for (const topic of ['d/child-a/telemetry', 'd/child-a/state/reported', 'd/child-a/commands/c1/result', 'd/child-q/updates/status'])
      assert.equal(authorizeChildPublish(statusOf, topic).ok, true, topic);
    for (const filter of ['d/child-a/commands/+', 'd/child-a/state/desired', 'd/child-a/errors', 'd/child-q/updates/+'])
      assert.equal(authorizeChildSubscribe(statusOf, filter).ok, true, filter);
    assert.ok(mayDeliverToGateway(statusOf, 'd/child-a/commands/c1'));
    assert.ok(!mayDeliverToGateway(statusOf, 'd/child-q/commands/c1'));
  });

  it('refuses any device that is not its child, a disabled child, wildcards in the prefix, and child registrations', () => {
    for (const topic of [
      'd/other/telemetry',
      'd/child-d/telemetry',
      'd/child-q/telemetry',
      'd/child-a/gateway/register',
      'd/child-a/state/desired',
      'd/+/telemetry',
      'd/child-a',
      '$SYS/x',
    ])
      assert.equal(authorizeChildPublish(statusOf, topic).ok, false, topic);
    for (const filter of ['d/+/commands/+', 'd/#', '#', 'd/other/commands/+', 'd/child-d/commands/+', '$share/g/d/child-a/commands/+'])
      assert.equal(authorizeChildSubscribe(statusOf, filter).ok, false, filter);
    assert.ok(!mayDeliverToGateway(statusOf, 'd/other/commands/c1'));
    assert.ok(!mayDeliverToGateway(statusOf, 'd/child-d/commands/c1'));
  });

  it('never authorizes a topic of a device outside the set, whatever the topic', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }).filter((id) => !id.includes('/')),
        fc.string({ maxLength: 60 }),
        (id, suffix) => {
          fc.pre(!children.has(id));
          const topic = `d/${id}/${suffix}`;
          assert.equal(authorizeChildPublish(statusOf, topic).ok, false, topic);
          assert.equal(authorizeChildSubscribe(statusOf, topic).ok, false, topic);
          assert.equal(mayDeliverToGateway(statusOf, topic), false, topic);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
