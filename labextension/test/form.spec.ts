import {
  formSpec,
  initialValues,
  parseInput,
  parseParameter,
  prefillFrom,
  carryOver,
  validate,
  valueText
} from '../src/form';

const ANSWER = {
  parameters: [
    { name: 'epochs', type: 'integer', default: 10 },
    { name: 'lr', type: 'float', default: 0.1 },
    { name: 'scale', type: 'float', default: 2 },
    { name: 'label', type: 'string', default: 'run' },
    { name: 'verbose', type: 'flag', default: false }
  ],
  inputs: {
    data: ['https://example.com/a.csv', 'https://example.com/b.csv'],
    extra: []
  }
};

describe('formSpec', () => {
  it('reads a list of typed parameters and a map of inputs', () => {
    const spec = formSpec(ANSWER);
    expect(spec.parameters.map(p => [p.name, p.type])).toEqual([
      ['epochs', 'integer'],
      ['lr', 'float'],
      ['scale', 'float'],
      ['label', 'string'],
      ['verbose', 'flag']
    ]);
    expect(spec.inputs).toEqual([
      {
        name: 'data',
        default: ['https://example.com/a.csv', 'https://example.com/b.csv']
      },
      { name: 'extra', default: [] }
    ]);
  });

  it('reads a map name -> {type, default} and infers missing types from defaults', () => {
    const spec = formSpec({
      parameters: {
        epochs: { type: 'integer', default: 3 },
        rate: { default: 0.5 },
        on: { default: true }
      },
      inputs: [{ name: 'model', urls: ['s3://bucket/model.pkl'] }]
    });
    expect(spec.parameters).toEqual([
      { name: 'epochs', type: 'integer', default: 3 },
      { name: 'rate', type: 'float', default: 0.5 },
      { name: 'on', type: 'flag', default: true }
    ]);
    expect(spec.inputs).toEqual([
      { name: 'model', default: ['s3://bucket/model.pkl'] }
    ]);
  });

  it('gives an empty form for a notebook without parameters or a strange answer', () => {
    expect(formSpec({ parameters: [], inputs: {} })).toEqual({
      parameters: [],
      inputs: []
    });
    expect(formSpec(null)).toEqual({ parameters: [], inputs: [] });
    expect(formSpec('nope')).toEqual({ parameters: [], inputs: [] });
  });
});

describe('initialValues', () => {
  it('shows the defaults as text, floats with a decimal point, flags as booleans', () => {
    const values = initialValues(formSpec(ANSWER));
    expect(values.parameters).toEqual({
      epochs: '10',
      lr: '0.1',
      scale: '2.0',
      label: 'run',
      verbose: false
    });
    expect(values.inputs).toEqual({
      data: 'https://example.com/a.csv\nhttps://example.com/b.csv',
      extra: ''
    });
  });

  it('lets a prefill override the defaults', () => {
    const values = initialValues(formSpec(ANSWER), {
      parameters: { epochs: '99' }
    });
    expect(values.parameters.epochs).toBe('99');
    expect(values.parameters.lr).toBe('0.1');
  });
});

describe('parseParameter', () => {
  const integer = { name: 'epochs', type: 'integer' as const, default: 10 };
  const float = { name: 'lr', type: 'float' as const, default: 0.1 };

  it('converts integers and refuses decimals and words', () => {
    expect(parseParameter(integer, ' 42 ')).toEqual({ value: 42 });
    expect(parseParameter(integer, '-3')).toEqual({ value: -3 });
    expect(parseParameter(integer, '4.5').error).toBe(
      'epochs must be an integer (e.g. 10).'
    );
    expect(parseParameter(integer, 'ten').error).toMatch(/integer/);
    expect(parseParameter(integer, '').error).toMatch(/integer/);
    expect(parseParameter(integer, '99999999999999999999').error).toMatch(
      /too large/
    );
  });

  it('converts floats, with exponents, and refuses the rest', () => {
    expect(parseParameter(float, '0.5')).toEqual({ value: 0.5 });
    expect(parseParameter(float, '1e-3')).toEqual({ value: 0.001 });
    expect(parseParameter(float, '3')).toEqual({ value: 3 });
    expect(parseParameter(float, '.5')).toEqual({ value: 0.5 });
    expect(parseParameter(float, 'abc').error).toBe(
      'lr must be a number (e.g. 0.1).'
    );
    expect(parseParameter(float, 'Infinity').error).toMatch(/number/);
    expect(parseParameter(float, '1.2.3').error).toMatch(/number/);
  });

  it('keeps strings as typed and flags as booleans', () => {
    const text = { name: 'label', type: 'string' as const, default: '' };
    expect(parseParameter(text, '  spaced ')).toEqual({ value: '  spaced ' });
    expect(parseParameter(text, '')).toEqual({ value: '' });
    const flag = { name: 'v', type: 'flag' as const, default: false };
    expect(parseParameter(flag, true)).toEqual({ value: true });
    expect(parseParameter(flag, false)).toEqual({ value: false });
  });
});

describe('parseInput', () => {
  it('splits lines and drops blank ones', () => {
    expect(parseInput('data', 'https://a/x.csv\n\n  s3://b/y  \n')).toEqual({
      value: ['https://a/x.csv', 's3://b/y']
    });
    expect(parseInput('data', '')).toEqual({ value: [] });
    expect(parseInput('data', 'datum://0123')).toEqual({
      value: ['datum://0123']
    });
  });

  it('names the line that is no URI', () => {
    expect(parseInput('data', 'https://a/x.csv\n/local/file').error).toBe(
      'data: "/local/file" is not a URI (e.g. https://host/data.csv, s3://bucket/key or datum://id).'
    );
  });
});

describe('validate', () => {
  it('gives typed values when everything is valid', () => {
    const spec = formSpec(ANSWER);
    const values = initialValues(spec);
    values.parameters.epochs = '20';
    values.parameters.verbose = true;
    const result = validate(spec, values);
    expect(result.ok).toBe(true);
    expect(result.parameters).toEqual({
      epochs: 20,
      lr: 0.1,
      scale: 2,
      label: 'run',
      verbose: true
    });
    expect(result.inputs).toEqual({
      data: ['https://example.com/a.csv', 'https://example.com/b.csv'],
      extra: []
    });
  });

  it('collects every error before submit', () => {
    const spec = formSpec(ANSWER);
    const values = initialValues(spec);
    values.parameters.epochs = 'x';
    values.parameters.lr = '';
    values.inputs.data = 'not a uri';
    const result = validate(spec, values);
    expect(result.ok).toBe(false);
    expect(Object.keys(result.errors.parameters)).toEqual(['epochs', 'lr']);
    expect(Object.keys(result.errors.inputs)).toEqual(['data']);
  });
});

describe('prefillFrom', () => {
  it("takes an execution's parameters and inputs for the re-run form", () => {
    const spec = formSpec(ANSWER);
    const prefill = prefillFrom(spec, {
      id: 'e1',
      counter: 3,
      status: 'complete',
      parameters: { epochs: 5, lr: 0.01, verbose: true, gone: 1 },
      inputs: [
        { name: 'data', urls: ['https://example.com/c.csv'] },
        { name: 'unknown', urls: ['https://x/y'] }
      ]
    });
    expect(prefill).toEqual({
      parameters: { epochs: '5', lr: '0.01', verbose: true },
      inputs: { data: 'https://example.com/c.csv' }
    });
    const values = initialValues(spec, prefill);
    expect(values.parameters).toEqual({
      epochs: '5',
      lr: '0.01',
      scale: '2.0',
      label: 'run',
      verbose: true
    });
  });

  it('reads flags given as text', () => {
    expect(valueText('flag', 'true')).toBe(true);
    expect(valueText('flag', 'off')).toBe(false);
  });
});

describe('carryOver', () => {
  it('keeps what the user changed and shows new defaults for the rest', () => {
    const before = formSpec(ANSWER);
    const values = initialValues(before);
    values.parameters.epochs = '50'; // changed by the user
    values.inputs.extra = 'https://x/y';
    const after = formSpec({
      parameters: [
        { name: 'epochs', type: 'integer', default: 20 },
        { name: 'lr', type: 'float', default: 0.2 }, // default changed in the notebook
        { name: 'label', type: 'flag', default: true } // type changed: the old text goes
      ],
      inputs: { extra: [], data: ['https://example.com/new.csv'] }
    });
    expect(carryOver(before, after, values)).toEqual({
      parameters: { epochs: '50', lr: '0.2', label: true },
      inputs: { extra: 'https://x/y', data: 'https://example.com/new.csv' }
    });
  });
});
