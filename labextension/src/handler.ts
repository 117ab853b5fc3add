/** The one way the panel talks to the server extension (`<base_url>valohai/...`). */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ApiError, apiError } from './errors';

export const API_NAMESPACE = 'valohai';

/** The server settings (base URL, XSRF and token handling) of this Lab. */
const settings = (): ServerConnection.ISettings =>
  ServerConnection.makeSettings();

/** The URL of a route, e.g. `apiUrl('executions/x/events')`, with query parameters. */
export function apiUrl(
  endPoint: string,
  query?: Record<string, string | undefined>
): string {
  const url = URLExt.join(settings().baseUrl, API_NAMESPACE, endPoint);
  const pairs = Object.entries(query ?? {}).filter(
    (pair): pair is [string, string] => pair[1] !== undefined && pair[1] !== ''
  );
  if (!pairs.length) {
    return url;
  }
  return `${url}?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`;
}

/**
 * Call a route of the server extension and return its JSON answer.
 *
 * Goes through `ServerConnection.makeRequest`, so the XSRF header and the token are set the
 * way the rest of Lab sets them. Failures raise an ApiError with a readable message.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit & { query?: Record<string, string | undefined> } = {}
): Promise<T> {
  const { query, ...request } = init;
  if (request.body !== undefined && typeof request.body === 'string') {
    request.headers = {
      'Content-Type': 'application/json',
      ...(request.headers ?? {})
    };
  }
  const server = settings();
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      apiUrl(endPoint, query),
      request,
      server
    );
  } catch (error) {
    throw new ApiError(
      'The Jupyter server does not answer.',
      'Is it still running? Reload JupyterLab once it is back.'
    );
  }
  const text = await response.text();
  let data: unknown = text;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    throw apiError(response.status, data);
  }
  return (text ? data : {}) as T;
}

/** The URL of an execution's server-sent events (EventSource sends the Jupyter cookies). */
export function eventsUrl(executionId: string, after?: string | null): string {
  const server = settings();
  const query: Record<string, string | undefined> = {
    after: after ?? undefined
  };
  // Cross-origin setups (no cookie) authenticate like Lab's websockets: with the token.
  if (server.appendToken && server.token) {
    query.token = server.token;
  }
  return apiUrl(`executions/${encodeURIComponent(executionId)}/events`, query);
}

/** The URL of a project's pushed executions (`event: execution` on each change). */
export function projectEventsUrl(
  projectId: string,
  after?: string | null
): string {
  const server = settings();
  const query: Record<string, string | undefined> = {
    after: after ?? undefined
  };
  if (server.appendToken && server.token) {
    query.token = server.token;
  }
  return apiUrl(
    `projects/${encodeURIComponent(projectId)}/executions/events`,
    query
  );
}

/** The URL of a deployment endpoint's build log (`log` events, then `end`). */
export function buildLogUrl(endpointId: string): string {
  const server = settings();
  const query: Record<string, string | undefined> = {};
  if (server.appendToken && server.token) {
    query.token = server.token;
  }
  return apiUrl(
    `deployment-endpoints/${encodeURIComponent(endpointId)}/build-log/events`,
    query
  );
}
