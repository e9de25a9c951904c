/**
 * A product's declared commands: the names its devices answer and each one's parameters (name,
 * JSON type, required). Parsed strictly when a product declares them, and checked when an
 * operator sends a command to one of its devices, so the console can offer a form and the device
 * never gets a command or a parameter its product does not declare.
 */
import { COMMAND_PARAM_TYPES, type CommandDeclaration, type CommandParamDeclaration, type CommandParamType } from '@bulwark/protocol';
import { ValidationError } from '../errors.js';

/** A product's declared commands and their parameters: wire shapes the console reads too (@bulwark/protocol). */
export type { CommandDeclaration, CommandParamDeclaration };

export const MAX_COMMANDS = 50;
export const MAX_PARAMS = 20;
const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_DESCRIPTION = 300;

/** The declarations as given, checked: names well-formed and unique, types known, no field unknown. */
export function parseCommandDeclarations(input: unknown): CommandDeclaration[] {
  if (!Array.isArray(input)) throw invalid('commands must be an array', 'commands');
  if (input.length > MAX_COMMANDS) throw invalid(`A product declares at most ${MAX_COMMANDS} commands`, 'commands');
  const names = new Set<string>();
  return input.map((raw, index) => {
    const field = `commands[${index}]`;
    const command = objectOf(raw, field, ['name', 'description', 'params']);
    const name = nameOf(command.name, `${field}.name`);
    if (names.has(name)) throw invalid(`The command "${name}" is declared twice`, `${field}.name`);
    names.add(name);
    const params = command.params ?? [];
    if (!Array.isArray(params) || params.length > MAX_PARAMS)
      throw invalid(`${field}.params must be an array of at most ${MAX_PARAMS} parameters`, `${field}.params`);
    const paramNames = new Set<string>();
    return {
      name,
      description: descriptionOf(command.description, `${field}.description`),
      params: params.map((rawParam, p) => {
        const paramField = `${field}.params[${p}]`;
        const param = objectOf(rawParam, paramField, ['name', 'type', 'required', 'description']);
        const paramName = nameOf(param.name, `${paramField}.name`);
        if (paramNames.has(paramName)) throw invalid(`The parameter "${paramName}" of "${name}" is declared twice`, `${paramField}.name`);
        paramNames.add(paramName);
        if (!COMMAND_PARAM_TYPES.includes(param.type as CommandParamType))
          throw invalid(`${paramField}.type must be one of ${COMMAND_PARAM_TYPES.join(', ')}`, `${paramField}.type`);
        if (param.required !== undefined && typeof param.required !== 'boolean')
          throw invalid(`${paramField}.required must be true or false`, `${paramField}.required`);
        return {
          name: paramName,
          type: param.type as CommandParamType,
          required: param.required === true,
          description: descriptionOf(param.description, `${paramField}.description`),
        };
      }),
    };
  });
}

/**
 * Throws unless `name` is one of the declared commands and `params` carry only its declared
 * parameters, each of its type, with every required one present. No declaration: anything goes.
 */
export function checkDeclaredCommand(declared: CommandDeclaration[] | null, name: string, params: Record<string, unknown>): void {
  if (declared === null) return;
  const command = declared.find((c) => c.name === name);
  if (!command)
    throw new ValidationError(
      `The product does not declare the command "${name}"; it declares: ${declared.map((c) => c.name).join(', ') || 'none'}`,
      { field: 'name', declared: declared.map((c) => c.name) },
      'device.command_undeclared',
    );
  for (const key of Object.keys(params)) {
    const param = command.params.find((p) => p.name === key);
    if (!param)
      throw new ValidationError(
        `The command "${name}" takes no parameter "${key}"`,
        { field: `params.${key}` },
        'device.command_undeclared',
      );
    if (!isOfType(params[key], param.type))
      throw new ValidationError(`The parameter "${key}" of "${name}" must be of type ${param.type}`, { field: `params.${key}` });
  }
  const missing = command.params.find((p) => p.required && !(p.name in params));
  if (missing)
    throw new ValidationError(`The command "${name}" needs the parameter "${missing.name}"`, { field: `params.${missing.name}` });
}

/** The stored column: null (none declared) or the JSON array. */
export function commandsOfColumn(text: string | null): CommandDeclaration[] | null {
  return text === null ? null : (JSON.parse(text) as CommandDeclaration[]);
}

function isOfType(value: unknown, type: CommandParamType): boolean {
  if (type === 'integer') return Number.isInteger(value);
  if (type === 'number') return typeof value === 'number' && Number.isFinite(value);
  return typeof value === type;
}

function objectOf(raw: unknown, field: string, allowed: string[]): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid(`${field} must be an object`, field);
  const unknown = Object.keys(raw).find((key) => !allowed.includes(key));
  if (unknown) throw invalid(`${field} has an unknown field "${unknown}"`, `${field}.${unknown}`);
  return raw as Record<string, unknown>;
}

function nameOf(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || !NAME.test(raw)) throw invalid(`${field} must be 1-64 of A-Z a-z 0-9 _ . : -`, field);
  return raw;
}

function descriptionOf(raw: unknown, field: string): string {
  if (raw === undefined) return '';
  if (typeof raw !== 'string' || raw.length > MAX_DESCRIPTION)
    throw invalid(`${field} must be text of at most ${MAX_DESCRIPTION} characters`, field);
  return raw;
}

function invalid(message: string, field: string): ValidationError {
  return new ValidationError(message, { field });
}
