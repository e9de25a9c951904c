/**
 * An EventEmitter keeps its listeners in `_events`, an object without a prototype, which V8 holds
 * as a dictionary: some 180 bytes for each emitter, and an idle connection has three (the guard,
 * Aedes's client, its packet parser; issue 21). Given an ordinary object of the events instead (as
 * Node's own streams give theirs, listing the events they expect), EventEmitter keeps it in that
 * shape ("shape mode", set by `EventEmitter.init` when `_events` is already there): a listener
 * removed leaves `undefined` in its place rather than deleting the key.
 */
import { EventEmitter } from 'node:events';

type Events = Record<string | symbol, unknown>;
const init = (EventEmitter as unknown as { init(this: EventEmitter): void }).init;
/**
 * The prototype of the objects of events: itself without one, so that no name is inherited (an
 * event called "toString" has no listener), while V8 keeps the objects made from it in fast mode
 * (an object literal without prototype would be a dictionary again).
 */
const NO_NAMES: object = Object.create(null) as object;

/** Puts `emitter`'s listeners in an object of fixed shape: `expected` first (the events it will see), then those it has. */
export function eventsInShape(emitter: EventEmitter, expected: readonly string[] = []): void {
  const target = emitter as unknown as { _events: Events };
  const current = target._events;
  const shaped = Object.create(NO_NAMES) as Events;
  for (const name of expected) shaped[name] = current[name];
  for (const key of Reflect.ownKeys(current)) if (!Object.hasOwn(shaped, key)) shaped[key] = current[key];
  target._events = shaped;
  init.call(emitter);
}
