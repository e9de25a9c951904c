/**
 * What the platform sends a device, dispatched to the application: desired state and deltas
 * (protocol §3.3, older versions ignored), commands (§3.4, each ID run at most once, answered
 * with ok / error / rejected) and error replies (§3.2).
 */
import { SeenIds } from './seen-ids.js';
import {
  commandResult,
  parsePlatformChannel,
  type Command,
  type CommandOutcome,
  type ErrorReply,
  type JsonObject,
} from '@bulwark/protocol';

export type DesiredHandler = (state: JsonObject, version: number) => void | Promise<void>;
export type CommandHandler = (params: Record<string, unknown>, command: Command) => CommandOutcome | void | Promise<CommandOutcome | void>;

export interface InboxEffects {
  /** Queue a message to the platform (below `d/<id>/`). */
  send(topic: string, payload: unknown): void;
  errorReply(reply: ErrorReply): void;
  handlerError(error: Error, where: string): void;
}

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

export class Inbox {
  readonly desiredHandlers: DesiredHandler[] = [];
  readonly deltaHandlers: DesiredHandler[] = [];
  readonly commandHandlers = new Map<string, CommandHandler>();
  /** The highest desired version applied without a handler failing. */
  appliedDesiredVersion = -1;
  private lastDeltaVersion = -1;
  duplicateCommands = 0;
  commandsRun = 0;

  constructor(
    private readonly seen: SeenIds,
    private readonly effects: InboxEffects,
  ) {}

  /** Handles a message on `d/<id>/<suffix>`. */
  async receive(suffix: string, payload: Buffer): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      body = undefined;
    }
    const channel = parsePlatformChannel(suffix);
    switch (channel?.kind) {
      case 'errors':
        if (isObject(body))
          this.effects.errorReply({ topic: String(body.topic ?? ''), code: String(body.code ?? ''), message: String(body.message ?? '') });
        return;
      case 'state_desired':
      case 'state_delta':
        return this.state(suffix, body);
      case 'command':
        return this.command(channel.commandId, body);
    }
  }

  private async state(suffix: string, body: unknown): Promise<void> {
    if (!isObject(body) || !Number.isSafeInteger(body.version) || !isObject(body.state)) {
      this.effects.handlerError(new Error(`Ignored a malformed ${suffix} message`), suffix);
      return;
    }
    const version = body.version as number;
    if (suffix === 'state/desired') {
      if (version <= this.appliedDesiredVersion) return;
      if (await this.run(this.desiredHandlers, body.state, version, suffix)) this.appliedDesiredVersion = version;
    } else {
      if (version < this.lastDeltaVersion) return;
      this.lastDeltaVersion = version;
      await this.run(this.deltaHandlers, body.state, version, suffix);
    }
  }

  private async run(handlers: DesiredHandler[], state: JsonObject, version: number, where: string): Promise<boolean> {
    let ok = true;
    for (const handler of handlers) {
      try {
        await handler(state, version);
      } catch (error) {
        ok = false;
        this.effects.handlerError(error as Error, where);
      }
    }
    return ok;
  }

  private async command(id: string, body: unknown): Promise<void> {
    if (this.seen.has(id)) {
      this.duplicateCommands++;
      return;
    }
    // Recorded before it runs: a crash while running must not run it again after a restart.
    this.seen.add(id);
    // Only the protocol's fields: the platform refuses unknown ones.
    const reply = ({ status, result, error }: CommandOutcome) =>
      this.effects.send(commandResult(id), {
        status,
        ...(result === undefined ? {} : { result }),
        ...(error === undefined ? {} : { error }),
      });
    if (!isObject(body) || typeof body.name !== 'string')
      return reply({ status: 'rejected', error: 'The command is not a JSON object with a name' });
    const handler = this.commandHandlers.get(body.name);
    if (!handler) return reply({ status: 'rejected', error: `This device has no command "${body.name}"` });
    const command: Command = {
      id,
      name: body.name,
      params: isObject(body.params) ? (body.params as Record<string, unknown>) : {},
      ...(typeof body.timeoutMs === 'number' ? { timeoutMs: body.timeoutMs } : {}),
      ...(typeof body.issuedAt === 'number' ? { issuedAt: body.issuedAt } : {}),
    };
    this.commandsRun++;
    try {
      const outcome = await handler(command.params, command);
      reply(outcome ?? { status: 'ok' });
    } catch (error) {
      reply({ status: 'error', error: (error as Error).message || String(error) });
    }
  }
}
