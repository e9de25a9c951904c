/**
 * eventsInShape (emitter-shape.ts): an emitter whose listeners are kept in an object of fixed shape
 * behaves as any EventEmitter (on, once, off, emit, an unheard 'error' thrown), and removing a
 * listener leaves its key in place (EventEmitter's shape mode) instead of deleting it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { eventsInShape } from './emitter-shape.js';

const eventsOf = (emitter: EventEmitter) => (emitter as unknown as { _events: object })._events;

describe('listeners kept in an object of fixed shape', () => {
  it('behaves as an EventEmitter, keeps the listeners it had, and keeps its keys when listeners leave', () => {
    const emitter = new EventEmitter();
    const heard: string[] = [];
    const before = (value: string) => heard.push(`before:${value}`);
    emitter.on('data', before);
    eventsInShape(emitter, ['readable', 'error', 'close']);
    assert.deepEqual(Object.keys(eventsOf(emitter)), ['readable', 'error', 'close', 'data']);
    assert.equal(Object.getPrototypeOf(Object.getPrototypeOf(eventsOf(emitter))), null, 'no inherited names');

    const onClose = () => heard.push('close');
    emitter.on('close', onClose);
    emitter.once('readable', () => heard.push('readable once'));
    emitter.on('data', (value: string) => heard.push(`after:${value}`));
    emitter.emit('data', 'x');
    emitter.emit('readable');
    emitter.emit('readable');
    emitter.emit('close');
    emitter.off('close', onClose);
    emitter.emit('close');
    emitter.off('data', before);
    emitter.emit('data', 'y');
    assert.deepEqual(heard, ['before:x', 'after:x', 'readable once', 'close', 'after:y']);
    assert.deepEqual(Object.keys(eventsOf(emitter)), ['readable', 'error', 'close', 'data'], 'no key deleted');
    assert.equal(emitter.listenerCount('close'), 0);
    assert.equal(emitter.listenerCount('data'), 1);
    // An 'error' nobody listens to is still thrown, one somebody does is delivered.
    assert.throws(() => emitter.emit('error', new Error('unheard')), /unheard/);
    const errors: string[] = [];
    emitter.on('error', (error: Error) => errors.push(error.message));
    emitter.emit('error', new Error('heard'));
    assert.deepEqual(errors, ['heard']);
    // Names an ordinary object has from its prototype are not events.
    assert.equal(emitter.listenerCount('toString'), 0);
    assert.equal(emitter.emit('toString'), false);
  });
});
