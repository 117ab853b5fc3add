import {
  connectionSummary,
  environmentLabel,
  pickProject,
  repositoryUrl,
  results
} from '../src/answers';
import { apiError, ApiError, errorMessage } from '../src/errors';

describe('results', () => {
  it('reads arrays and pages', () => {
    expect(results([1, 2])).toEqual([1, 2]);
    expect(results({ count: 1, results: [3] })).toEqual([3]);
    expect(results({ executions: [4] })).toEqual([4]);
    expect(results({})).toEqual([]);
    expect(results(null)).toEqual([]);
  });
});

describe('connectionSummary', () => {
  const NO_DEFAULTS = { project: '', environment: '', image: '' };

  it('describes a ready embedded master, the user and the defaults', () => {
    expect(
      connectionSummary({
        state: 'ready',
        url: 'http://127.0.0.1:8700',
        source: 'running embedded default',
        embedded: true,
        default_project: 'demo',
        environment: null,
        image: 'python:3.12',
        user: { username: 'ada' }
      })
    ).toEqual({
      ok: true,
      starting: false,
      kind: 'Embedded master',
      url: 'http://127.0.0.1:8700',
      user: 'ada',
      problem: '',
      defaults: { project: 'demo', environment: '', image: 'python:3.12' }
    });
  });

  it('says when the embedded master is still starting', () => {
    const summary = connectionSummary({
      state: 'starting',
      url: null,
      embedded: true
    });
    expect(summary).toMatchObject({
      ok: false,
      starting: true,
      problem: 'The embedded master is starting…',
      defaults: NO_DEFAULTS
    });
  });

  it('describes a remote master that failed, with the hint', () => {
    const summary = connectionSummary({
      state: 'failed',
      url: 'https://vh.example.com',
      source: 'c.Valohai.master_url',
      embedded: false,
      error: {
        message: 'The master at https://vh.example.com does not answer.',
        hint: 'Is it running?'
      }
    });
    expect(summary.ok).toBe(false);
    expect(summary.starting).toBe(false);
    expect(summary.kind).toBe('Remote master');
    expect(summary.problem).toBe(
      'The master at https://vh.example.com does not answer. Is it running?'
    );
  });

  it('says when nothing is configured', () => {
    const summary = connectionSummary({
      connected: false,
      message: 'Not configured.',
      hint: 'Log in.'
    });
    expect(summary).toMatchObject({
      ok: false,
      problem: 'Not configured. Log in.'
    });
    expect(connectionSummary({ state: 'stopped' }).problem).toMatch(/stopped/);
  });
});

describe('labels', () => {
  it('labels environments with queue depth and workers when known', () => {
    expect(environmentLabel({ id: '1', name: 'Local', slug: 'local' })).toBe(
      'Local'
    );
    expect(
      environmentLabel({
        id: '1',
        name: 'Local',
        slug: 'local',
        queue_depth: 3,
        workers: 1
      })
    ).toBe('Local (3 queued, 1 worker)');
    expect(
      environmentLabel({
        id: '1',
        name: '',
        slug: 'gpu',
        queued: 0,
        workers: [{}, {}]
      })
    ).toBe('gpu (0 queued, 2 workers)');
  });

  it('reads repositories and picks projects', () => {
    expect(repositoryUrl({ id: 'p', name: 'p', repository: null })).toBe('');
    expect(
      repositoryUrl({
        id: 'p',
        name: 'p',
        repository: { url: 'https://g/r.git' }
      })
    ).toBe('https://g/r.git');
    const projects = [
      { id: 'p1', name: 'one' },
      { id: 'p2', name: 'two' }
    ];
    expect(pickProject(projects, 'two')).toBe('p2');
    expect(pickProject(projects, 'p2')).toBe('p2');
    expect(pickProject(projects, 'gone')).toBe('p1');
    expect(pickProject([], 'x')).toBeNull();
  });
});

describe('errors', () => {
  it("reads the server's {code, message, hint}", () => {
    const error = apiError(400, {
      code: 'invalid_input',
      message: "Parameter 'lr' must be a number.",
      hint: 'Its default is 0.1.'
    });
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_input');
    expect(errorMessage(error)).toBe(
      "Parameter 'lr' must be a number. Its default is 0.1."
    );
  });

  it("reads Jupyter's {message, reason} and adds a hint of its own", () => {
    expect(
      errorMessage(apiError(404, { message: 'Not Found', reason: null }))
    ).toBe(
      'Not Found Is the jupyter-valohai server extension enabled? (`jupyter server extension list`)'
    );
  });

  it('never shows an HTML page', () => {
    expect(
      errorMessage(apiError(500, '<html><body>Traceback...</body></html>'))
    ).toBe('The Jupyter server failed.');
    expect(errorMessage(apiError(418, ''))).toBe(
      'The server answered HTTP 418.'
    );
    expect(errorMessage(apiError(502, 'bad gateway'))).toBe('bad gateway');
  });

  it('turns other errors into one line', () => {
    expect(errorMessage(new TypeError('Failed to fetch'))).toBe(
      'The Jupyter server does not answer. Is it still running?'
    );
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('plain')).toBe('plain');
  });
});
