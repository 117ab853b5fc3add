/**
 * requestAPI against a real local HTTP server standing in for Jupyter: the URL under
 * `<base_url>valohai/`, the JSON body, the token header, and readable errors.
 */
import { PageConfig } from '@jupyterlab/coreutils';
import * as http from 'http';
import { AddressInfo } from 'net';

import { ApiError } from '../src/errors';
import { apiUrl, eventsUrl, requestAPI } from '../src/handler';

interface ISeen {
  method?: string;
  url?: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let server: http.Server;
let seen: ISeen[] = [];
let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', chunk => (body += chunk));
    req.on('end', () => {
      seen.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body
      });
      answer(req, res);
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  PageConfig.setOption('baseUrl', `http://127.0.0.1:${port}/lab-base/`);
  PageConfig.setOption('token', 'secret-token');
});

afterAll(async () => {
  await new Promise(resolve => server.close(resolve));
});

beforeEach(() => {
  seen = [];
});

/** The error a call fails with (and a test failure if it does not fail). */
const failure = (call: Promise<unknown>): Promise<ApiError> =>
  call.then(
    () => {
      throw new Error('the call did not fail');
    },
    (e: ApiError) => e
  );

const json =
  (status: number, body: unknown) => (_: unknown, res: http.ServerResponse) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };

describe('requestAPI', () => {
  it('GETs a route under <base_url>valohai/ with the query and the token', async () => {
    answer = json(200, { results: [{ id: 'p1' }] });
    const got = await requestAPI('projects', {
      query: { limit: '5', empty: '' }
    });
    expect(got).toEqual({ results: [{ id: 'p1' }] });
    expect(seen[0].method).toBe('GET');
    // (Lab adds a cache-busting number to GETs)
    expect(seen[0].url).toMatch(
      /^\/lab-base\/valohai\/projects\?limit=5(&\d+)?$/
    );
    expect(seen[0].headers.authorization).toBe('token secret-token');
  });

  it('POSTs JSON', async () => {
    answer = json(201, { id: 'e1', counter: 1, status: 'queued' });
    await requestAPI('executions', {
      method: 'POST',
      body: JSON.stringify({ path: 'a b/nb.ipynb', parameters: { epochs: 3 } })
    });
    expect(seen[0].method).toBe('POST');
    expect(seen[0].headers['content-type']).toBe('application/json');
    expect(JSON.parse(seen[0].body)).toEqual({
      path: 'a b/nb.ipynb',
      parameters: { epochs: 3 }
    });
  });

  it('turns {code, message, hint} into an ApiError', async () => {
    answer = json(400, {
      code: 'invalid_input',
      message: "Unknown environment 'gpu'.",
      hint: 'Known environments: local.'
    });
    const error = await failure(
      requestAPI('executions', {
        method: 'POST',
        body: '{}'
      })
    );
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(400);
    expect(error.message).toBe("Unknown environment 'gpu'.");
    expect(error.hint).toBe('Known environments: local.');
  });

  it('answers an HTML error page with the status, not the page', async () => {
    answer = (_, res) => {
      res.writeHead(500, { 'Content-Type': 'text/html' });
      res.end('<html><body>Traceback (most recent call last)</body></html>');
    };
    const error = await failure(requestAPI('connection'));
    expect(error.message).toBe('The Jupyter server failed.');
  });

  it('says so when the server does not answer at all', async () => {
    const base = PageConfig.getOption('baseUrl');
    PageConfig.setOption('baseUrl', 'http://127.0.0.1:9/');
    try {
      const error = await failure(requestAPI('connection'));
      expect(error).toBeInstanceOf(ApiError);
      expect(error.message).toBe('The Jupyter server does not answer.');
    } finally {
      PageConfig.setOption('baseUrl', base);
    }
  });
});

describe('URLs', () => {
  it('quotes query values and execution ids', () => {
    expect(apiUrl('notebook-parameters', { path: 'dir/my nb.ipynb' })).toMatch(
      /\/lab-base\/valohai\/notebook-parameters\?path=dir%2Fmy%20nb\.ipynb$/
    );
    expect(eventsUrl('e/1', '5-0')).toMatch(
      /\/valohai\/executions\/e%2F1\/events\?after=5-0/
    );
  });
});
