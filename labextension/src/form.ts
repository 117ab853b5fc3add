/**
 * The "Run this notebook" form, without any DOM: which fields a notebook's parameters give,
 * their initial text, validation and conversion to typed values, and prefilling from an
 * earlier execution ("re-run with changes").
 */
import { IDescribeExecution } from './types';

/** The parameter types a notebook's `parameters` cell gives (jupyter_valohai.notebook). */
export type ParameterType = 'integer' | 'float' | 'string' | 'flag';

const PARAMETER_TYPES: ParameterType[] = ['integer', 'float', 'string', 'flag'];

export interface IParameterField {
  name: string;
  type: ParameterType;
  /** The default from the notebook, as written there (typed). */
  default: unknown;
}

export interface IInputField {
  name: string;
  /** The notebook's default URIs. */
  default: string[];
}

export interface IFormSpec {
  parameters: IParameterField[];
  inputs: IInputField[];
}

/** What the user typed: text per parameter (flags are booleans), one URI per line per input. */
export interface IFormValues {
  parameters: Record<string, string | boolean>;
  inputs: Record<string, string>;
}

export interface IFormErrors {
  parameters: Record<string, string>;
  inputs: Record<string, string>;
}

export interface IValidated {
  ok: boolean;
  errors: IFormErrors;
  parameters: Record<string, unknown>;
  inputs: Record<string, string[]>;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function asType(value: unknown, fallback: unknown): ParameterType {
  if (
    typeof value === 'string' &&
    (PARAMETER_TYPES as string[]).includes(value)
  ) {
    return value as ParameterType;
  }
  if (typeof fallback === 'boolean') {
    return 'flag';
  }
  if (typeof fallback === 'number') {
    return Number.isInteger(fallback) ? 'integer' : 'float';
  }
  return 'string';
}

function parameterList(raw: unknown): IParameterField[] {
  const items: [string | undefined, unknown][] = Array.isArray(raw)
    ? raw.map(item => [undefined, item])
    : isRecord(raw)
      ? Object.entries(raw)
      : [];
  const fields: IParameterField[] = [];
  for (const [key, item] of items) {
    if (isRecord(item)) {
      const name = typeof item.name === 'string' ? item.name : key;
      if (name) {
        fields.push({
          name,
          type: asType(item.type, item.default),
          default: item.default
        });
      }
    } else if (key) {
      // a plain {name: default} map
      fields.push({ name: key, type: asType(undefined, item), default: item });
    }
  }
  return fields;
}

function uriList(value: unknown): string[] {
  if (typeof value === 'string') {
    return value ? [value] : [];
  }
  if (Array.isArray(value)) {
    return value.filter((v): v is string => typeof v === 'string' && v !== '');
  }
  if (isRecord(value)) {
    return uriList(value.urls ?? value.default ?? value.uris);
  }
  return [];
}

function inputList(raw: unknown): IInputField[] {
  if (Array.isArray(raw)) {
    return raw
      .filter(isRecord)
      .filter(item => typeof item.name === 'string' && item.name)
      .map(item => ({ name: item.name as string, default: uriList(item) }));
  }
  if (isRecord(raw)) {
    return Object.entries(raw).map(([name, value]) => ({
      name,
      default: uriList(value)
    }));
  }
  return [];
}

/**
 * The form of `GET valohai/notebook-parameters?path=`: accepts `{parameters, inputs}` where
 * parameters are a list of `{name, type, default}` or a map name -> `{type, default}`, and
 * inputs a map name -> URI list (or a list of `{name, urls}`).
 */
export function formSpec(raw: unknown): IFormSpec {
  if (!isRecord(raw)) {
    return { parameters: [], inputs: [] };
  }
  const hasWrapper = 'parameters' in raw || 'inputs' in raw;
  return {
    parameters: parameterList(hasWrapper ? raw.parameters : raw),
    inputs: inputList(hasWrapper ? raw.inputs : undefined)
  };
}

/** The text a default shows as (flags stay booleans). */
export function valueText(
  type: ParameterType,
  value: unknown
): string | boolean {
  if (type === 'flag') {
    if (typeof value === 'string') {
      return ['true', 'yes', 'on', '1'].includes(value.trim().toLowerCase());
    }
    return Boolean(value);
  }
  if (value === undefined || value === null) {
    return '';
  }
  if (
    type === 'float' &&
    typeof value === 'number' &&
    Number.isInteger(value)
  ) {
    return value.toFixed(1); // 1.0, so it reads as a float
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The form's starting values: the notebook's defaults, overridden by `prefill`. */
export function initialValues(
  spec: IFormSpec,
  prefill?: Partial<IFormValues>
): IFormValues {
  const values: IFormValues = { parameters: {}, inputs: {} };
  for (const field of spec.parameters) {
    values.parameters[field.name] = valueText(field.type, field.default);
  }
  for (const field of spec.inputs) {
    values.inputs[field.name] = field.default.join('\n');
  }
  Object.assign(values.parameters, prefill?.parameters ?? {});
  Object.assign(values.inputs, prefill?.inputs ?? {});
  return values;
}

const INTEGER = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const URI = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/\S+$/;

/** Check one parameter's value; returns the typed value or an error message. */
export function parseParameter(
  field: IParameterField,
  value: string | boolean | undefined
): { value?: unknown; error?: string } {
  if (field.type === 'flag') {
    return { value: Boolean(value) };
  }
  const text = typeof value === 'string' ? value : String(value ?? '');
  if (field.type === 'string') {
    return { value: text };
  }
  const trimmed = text.trim();
  if (field.type === 'integer') {
    if (!INTEGER.test(trimmed)) {
      return {
        error: `${field.name} must be an integer (e.g. ${valueText('integer', field.default) || 1}).`
      };
    }
    const parsed = Number(trimmed);
    if (!Number.isSafeInteger(parsed)) {
      return { error: `${field.name} is too large for an integer.` };
    }
    return { value: parsed };
  }
  if (!FLOAT.test(trimmed) || !Number.isFinite(Number(trimmed))) {
    return {
      error: `${field.name} must be a number (e.g. ${valueText('float', field.default) || '0.1'}).`
    };
  }
  return { value: Number(trimmed) };
}

/** Split an input's text into URIs (one a line) and check each. */
export function parseInput(
  name: string,
  text: string | undefined
): { value?: string[]; error?: string } {
  const uris = (text ?? '')
    .split(/\r?\n/)
    .map(line => line.trim())
    .filter(line => line !== '');
  const bad = uris.find(uri => !URI.test(uri));
  if (bad !== undefined) {
    return {
      error: `${name}: "${bad}" is not a URI (e.g. https://host/data.csv, s3://bucket/key or datum://id).`
    };
  }
  return { value: uris };
}

/** Validate the whole form; typed parameter values and URI lists when it is valid. */
export function validate(spec: IFormSpec, values: IFormValues): IValidated {
  const result: IValidated = {
    ok: true,
    errors: { parameters: {}, inputs: {} },
    parameters: {},
    inputs: {}
  };
  for (const field of spec.parameters) {
    const parsed = parseParameter(field, values.parameters[field.name]);
    if (parsed.error !== undefined) {
      result.errors.parameters[field.name] = parsed.error;
      result.ok = false;
    } else {
      result.parameters[field.name] = parsed.value;
    }
  }
  for (const field of spec.inputs) {
    const parsed = parseInput(field.name, values.inputs[field.name]);
    if (parsed.error !== undefined) {
      result.errors.inputs[field.name] = parsed.error;
      result.ok = false;
    } else {
      result.inputs[field.name] = parsed.value ?? [];
    }
  }
  return result;
}

/** The form values of an earlier execution, for "re-run with changes". */
export function prefillFrom(
  spec: IFormSpec,
  execution: IDescribeExecution
): Partial<IFormValues> {
  const prefill: IFormValues = { parameters: {}, inputs: {} };
  const params = execution.parameters ?? {};
  for (const field of spec.parameters) {
    if (field.name in params) {
      prefill.parameters[field.name] = valueText(
        field.type,
        params[field.name]
      );
    }
  }
  for (const input of execution.inputs ?? []) {
    if (spec.inputs.some(field => field.name === input.name)) {
      prefill.inputs[input.name] = uriList(input.urls).join('\n');
    }
  }
  return prefill;
}

/**
 * The values to keep when the notebook's parameters are read again (after a save): what the
 * user changed from the old defaults stays, the rest shows the new defaults.
 */
export function carryOver(
  previous: IFormSpec,
  next: IFormSpec,
  values: IFormValues
): IFormValues {
  const before = initialValues(previous);
  const kept: IFormValues = { parameters: {}, inputs: {} };
  for (const field of next.parameters) {
    const value = values.parameters[field.name];
    const old = previous.parameters.find(p => p.name === field.name);
    if (
      old &&
      old.type === field.type &&
      value !== undefined &&
      value !== before.parameters[field.name]
    ) {
      kept.parameters[field.name] = value;
    }
  }
  for (const field of next.inputs) {
    const text = values.inputs[field.name];
    if (
      text !== undefined &&
      field.name in before.inputs &&
      text !== before.inputs[field.name]
    ) {
      kept.inputs[field.name] = text;
    }
  }
  return initialValues(next, kept);
}
