import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  deviceChannelSuffix,
  deviceTopic,
  filterMatches,
  MAX_TOPIC_LENGTH,
  parseDeviceChannel,
  parsePlatformChannel,
  platformChannelSuffix,
  splitDeviceTopic,
  topicShapeProblem,
  type DeviceChannel,
  type PlatformChannel,
} from './topics.js';

const chars = (alphabet: string, min: number, max: number) =>
  fc.array(fc.constantFrom(...alphabet), { minLength: min, maxLength: max }).map((a) => a.join(''));
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const deviceId = chars(`${ALNUM}._-`, 1, 128);
const commandId = chars(`${ALNUM}_-`, 1, 64);
const updateName = chars('abcdefghijklmnopqrstuvwxyz-', 1, 32);

const deviceChannel: fc.Arbitrary<DeviceChannel> = fc.oneof(
  fc.constantFrom<DeviceChannel>(
    { kind: 'telemetry', format: 'json' },
    { kind: 'telemetry', format: 'cbor' },
    { kind: 'state_reported' },
    { kind: 'state_get' },
    { kind: 'presence' },
    { kind: 'gateway_register' },
    { kind: 'binding_presence' },
    { kind: 'binding_reset_result' },
  ),
  commandId.map((id): DeviceChannel => ({ kind: 'command_result', commandId: id })),
  updateName.filter((n) => n !== 'available').map((name): DeviceChannel => ({ kind: 'update', name })),
);

const platformChannel: fc.Arbitrary<PlatformChannel> = fc.oneof(
  fc.constantFrom<PlatformChannel>(
    { kind: 'errors' },
    { kind: 'state_desired' },
    { kind: 'state_delta' },
    { kind: 'gateway_result' },
    { kind: 'gateway_detached' },
    { kind: 'binding_reset' },
  ),
  commandId.map((id): PlatformChannel => ({ kind: 'command', commandId: id })),
  updateName.map((name): PlatformChannel => ({ kind: 'update', name })),
);

/** Suffixes built from the scheme's words and stray characters, so near misses are tried as well as noise. */
const suffixLike = fc
  .array(
    fc.oneof(
      fc.constantFrom('telemetry', 'cbor', 'state', 'reported', 'get', 'desired', 'delta', 'commands', 'result', 'updates', 'errors'),
      fc.constantFrom('presence', 'available', 'status', 'binding', 'reset', '+', '#', '', 'a b', 'x/y', '\u0000', 'é'),
      fc.constantFrom('gateway', 'register', 'detached', 'children'),
      fc.string({ maxLength: 70 }),
    ),
    { minLength: 1, maxLength: 5 },
  )
  .map((levels) => levels.join('/'));

describe('the device topic scheme', () => {
  it('parses back every device channel it builds, under every device ID', () => {
    fc.assert(
      fc.property(deviceId, deviceChannel, (id, channel) => {
        const topic = deviceTopic(id, deviceChannelSuffix(channel));
        assert.equal(topicShapeProblem(topic), null, topic);
        const split = splitDeviceTopic(topic);
        assert.deepEqual(split && { deviceId: split.deviceId, channel: parseDeviceChannel(split.suffix) }, { deviceId: id, channel });
      }),
    );
  });

  it('parses back every platform channel it builds', () => {
    fc.assert(
      fc.property(deviceId, platformChannel, (id, channel) => {
        const split = splitDeviceTopic(deviceTopic(id, platformChannelSuffix(channel)));
        assert.deepEqual(split && { deviceId: split.deviceId, channel: parsePlatformChannel(split.suffix) }, { deviceId: id, channel });
      }),
    );
  });

  it('refuses every suffix that is not a channel it builds, in either direction', () => {
    fc.assert(
      fc.property(suffixLike, (suffix) => {
        const device = parseDeviceChannel(suffix);
        if (device) assert.equal(deviceChannelSuffix(device), suffix);
        const platform = parsePlatformChannel(suffix);
        if (platform) assert.equal(platformChannelSuffix(platform), suffix);
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses topics outside d/<deviceId>/ and device IDs a certificate cannot carry', () => {
    for (const topic of ['telemetry', 'd/telemetry', 'e/dev-1/telemetry', 'd//telemetry', 'd/+/telemetry', 'd/#', 'd/a b/x', '$SYS/d/x/y'])
      assert.equal(splitDeviceTopic(topic), null, topic);
    assert.equal(splitDeviceTopic(`d/${'a'.repeat(129)}/telemetry`), null);
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 140 }).filter((id) => !id.includes('/')),
        suffixLike,
        (id, suffix) => {
          const split = splitDeviceTopic(deviceTopic(id, suffix));
          if (split) assert.ok(/^[A-Za-z0-9._-]{1,128}$/.test(split.deviceId) && split.deviceId === id && split.suffix === suffix, id);
          else assert.ok(!/^[A-Za-z0-9._-]{1,128}$/.test(id), id);
        },
      ),
    );
  });

  it('refuses commands and updates that are only close to the scheme', () => {
    const refused = [
      'commands/c1',
      'commands/c 1/result',
      'commands//result',
      `commands/${'c'.repeat(65)}/result`,
      'commands/c1/result/x',
      'updates/available',
      'updates/Status',
      'updates/status/x',
      'telemetry/json',
      'state',
      'state/desired',
      'errors',
      'gateway',
      'gateway/result',
      'gateway/detached',
      'gateway/register/x',
      'gateway/+',
    ];
    for (const suffix of refused) assert.equal(parseDeviceChannel(suffix), null, suffix);
    for (const suffix of [
      'commands/c1/result',
      'commands/+',
      'state/reported',
      'telemetry',
      'updates/Status',
      'gateway/register',
      'gateway/+',
    ])
      assert.equal(parsePlatformChannel(suffix), null, suffix);
  });

  it('measures topic length in UTF-8 bytes, as MQTT does', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 150 }), (topic) => {
        const problem = topicShapeProblem(topic);
        const tooLong = Buffer.byteLength(topic) > MAX_TOPIC_LENGTH;
        if (tooLong) assert.match(problem ?? '', /longer than/);
        else assert.doesNotMatch(problem ?? '', /longer than/);
      }),
    );
    assert.equal(topicShapeProblem('\ud800'.repeat(86)), 'topic longer than 256 bytes', 'a lone surrogate counts as the 3 bytes of U+FFFD');
  });

  it('matches filters as MQTT does', () => {
    assert.ok(filterMatches('d/a/#', 'd/a/state/desired'));
    assert.ok(filterMatches('d/a/commands/+', 'd/a/commands/c1'));
    assert.ok(!filterMatches('d/a/commands/+', 'd/a/commands/c1/result'));
    assert.ok(!filterMatches('d/a/state/desired', 'd/a/state'));
  });
});
