import {
  deployBody,
  deployDefaults,
  endpointUrls,
  fileChoices,
  formatAnswer,
  IDeployOptions,
  IDeploymentVersion,
  parsePayload,
  slugName,
  validateDeploy,
  versionSummary
} from '../src/deploy';
import { IDatum } from '../src/types';

const model: IDatum = { id: 'd-model', name: 'model.pkl' };
const scaler: IDatum = { id: 'd-scaler', name: 'out/scaler.pkl' };
const report: IDatum = { id: 'd-report', name: 'report.txt' };

const options = (extra: Partial<IDeployOptions> = {}): IDeployOptions => ({
  execution: 'e-1',
  project: 'p-1',
  commit: '~abc',
  endpoints: [
    {
      name: 'other',
      image: 'python:3.11',
      files: [{ name: 'weights', path: 'weights.bin' }]
    },
    {
      name: 'predict',
      image: 'python:3.11',
      wsgi: 'predict:application',
      files: [
        { name: 'model', path: 'model.pkl' },
        { name: 'scaler', path: 'scaler.pkl' }
      ]
    }
  ],
  deployments: [],
  targets: [{ name: 'local', kind: 'local' }],
  problem: null,
  ...extra
});

describe('deploy form', () => {
  it('picks the endpoint with a file of the output name, files by name', () => {
    const form = deployDefaults(options(), [report, model, scaler], model);
    expect(form.endpoint).toBe('predict');
    expect(form.files).toEqual({ model: 'd-model', scaler: 'd-scaler' });
    expect(form.deployment).toBe('predict');
    expect(form.alias).toBe('');
  });

  it('falls back to the first endpoint and the clicked output', () => {
    const form = deployDefaults(options(), [report], report);
    expect(form.endpoint).toBe('other');
    expect(form.files).toEqual({ weights: 'd-report' });
  });

  it("reuses the project's deployment and its registry", () => {
    const form = deployDefaults(
      options({
        deployments: [{ id: 'dep-1', name: 'iris', registry: '127.0.0.1:5000' }]
      }),
      [model],
      model
    );
    expect(form.deployment).toBe('iris');
    expect(form.registry).toBe('127.0.0.1:5000');
  });

  it('has nothing to pick without endpoints', () => {
    const form = deployDefaults(options({ endpoints: [] }), [model], model);
    expect(form.endpoint).toBe('');
    expect(validateDeploy(form, options({ endpoints: [] })).endpoint).toBe(
      'Pick the endpoint to deploy.'
    );
  });

  it('files follow the endpoint picked', () => {
    const predict = options().endpoints[1];
    expect(fileChoices(predict, [model], model)).toEqual({
      model: 'd-model',
      scaler: 'd-model'
    });
    expect(fileChoices(undefined, [model], model)).toEqual({});
  });

  it('makes valid names', () => {
    expect(slugName('My Project_2!')).toBe('my-project-2');
    expect(slugName('--x--')).toBe('x');
    expect(slugName('a'.repeat(80))).toHaveLength(63);
    expect(slugName('!!!')).toBe('');
  });

  it('checks names, files and the registry before sending', () => {
    const opts = options();
    const form = deployDefaults(opts, [model, scaler], model);
    expect(validateDeploy(form, opts)).toEqual({});
    const bad = {
      ...form,
      files: { model: 'd-model', scaler: '' },
      deployment: 'Bad Name',
      alias: '-x',
      registry: 'host/path'
    };
    const errors = validateDeploy(bad, opts);
    expect(Object.keys(errors).sort()).toEqual([
      'alias',
      'deployment',
      'file:scaler',
      'registry'
    ]);
    expect(errors['file:scaler']).toBe('Pick the output for scaler.pkl.');
    expect(errors.deployment).toContain('lowercase letters');
  });

  it("sends only the endpoint's files and the optional fields given", () => {
    const opts = options();
    const form = {
      ...deployDefaults(opts, [model, scaler], model),
      files: { model: 'd-model', scaler: 'd-scaler', stale: 'd-x' },
      alias: ' staging '
    };
    expect(deployBody('e-1', form, opts)).toEqual({
      execution: 'e-1',
      endpoint: 'predict',
      files: { model: 'd-model', scaler: 'd-scaler' },
      deployment: 'predict',
      alias: 'staging'
    });
    const withRegistry = { ...form, alias: '', registry: '127.0.0.1:5000' };
    expect(deployBody('e-1', withRegistry, opts)).toMatchObject({
      registry: '127.0.0.1:5000'
    });
    expect(deployBody('e-1', withRegistry, opts)).not.toHaveProperty('alias');
  });
});

describe('deploy results', () => {
  const version = (
    extra: Partial<IDeploymentVersion> = {}
  ): IDeploymentVersion => ({
    id: 'depv-1',
    name: '20261129.0',
    status: 'running',
    deployment: { id: 'dep-1', name: 'iris' },
    endpoints: [
      {
        id: 'depe-1',
        name: 'predict',
        status: 'running',
        endpoint_url: 'http://127.0.0.1:9/a/b/iris/20261129.0/predict/',
        alias_urls: {
          staging: 'http://127.0.0.1:9/a/b/iris/staging/predict/',
          gone: null
        }
      }
    ],
    ...extra
  });

  it('says why a version failed', () => {
    expect(versionSummary(version())).toBe('running');
    const failed = version({
      status: 'failed',
      endpoints: [
        {
          id: 'depe-1',
          name: 'predict',
          status: 'failed',
          failure: { phase: 'build', reason: 'pip said no' }
        }
      ]
    });
    expect(versionSummary(failed)).toBe('failed (build): pip said no');
  });

  it('lists the URLs by version, then by alias', () => {
    expect(endpointUrls(version().endpoints[0])).toEqual([
      {
        label: 'version',
        url: 'http://127.0.0.1:9/a/b/iris/20261129.0/predict/'
      },
      { label: 'staging', url: 'http://127.0.0.1:9/a/b/iris/staging/predict/' }
    ]);
    expect(endpointUrls({ id: 'x', name: 'x', status: 'building' })).toEqual(
      []
    );
  });

  it('reads the payload as JSON or says why not', () => {
    expect(parsePayload('{"x": [1, 2]}')).toEqual({
      ok: true,
      payload: { x: [1, 2] }
    });
    expect(parsePayload('  ')).toEqual({
      ok: false,
      error: 'Write the JSON body to send.'
    });
    const bad = parsePayload('{x: 1}');
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(/^Not JSON: /);
  });

  it('shows the answer with its status', () => {
    expect(formatAnswer({ url: 'u', status: 200, body: { y: 7 } })).toBe(
      'HTTP 200\n{\n  "y": 7\n}'
    );
    expect(formatAnswer({ url: 'u', status: 500, body: 'boom' })).toBe(
      'HTTP 500\nboom'
    );
  });
});
