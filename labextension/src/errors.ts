/**
 * Errors of the server extension's routes, as one readable line (plus a hint) for the panel.
 * The server answers errors as JSON `{"code", "message", "hint"}` (jupyter_valohai.errors), or
 * Jupyter's own `{"message", "reason"}`; anything else falls back to the HTTP status.
 */

export class ApiError extends Error {
  constructor(
    message: string,
    readonly hint: string = '',
    readonly status: number = 0,
    readonly code: string = ''
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: 'The server refused the request.',
  401: 'Not logged in to Jupyter any more.',
  403: 'Jupyter refused the request.',
  404: 'The server has no such route or object.',
  409: 'That already exists.',
  500: 'The Jupyter server failed.',
  502: 'The master did not answer properly.',
  503: 'The master does not answer.'
};

const HINTS: Record<number, string> = {
  401: 'Reload JupyterLab and log in again.',
  403: 'Reload JupyterLab (the XSRF cookie may have expired).',
  404: 'Is the jupyter-valohai server extension enabled? (`jupyter server extension list`)'
};

/** The ApiError for a failed answer: `status` and the body (parsed JSON, or text). */
export function apiError(status: number, body: unknown): ApiError {
  if (typeof body === 'object' && body !== null) {
    const data = body as Record<string, unknown>;
    const message =
      typeof data.message === 'string' && data.message ? data.message : '';
    const reason = typeof data.reason === 'string' ? data.reason : '';
    const hint = typeof data.hint === 'string' ? data.hint : '';
    const code = typeof data.code === 'string' ? data.code : '';
    if (message || reason) {
      return new ApiError(
        message || reason,
        hint || HINTS[status] || '',
        status,
        code
      );
    }
  }
  const text = typeof body === 'string' ? body.trim() : '';
  // An HTML error page is no message: fall back to the status's own words.
  const readable =
    text && !text.startsWith('<') && text.length < 300 ? text : '';
  const message =
    readable || STATUS_TEXT[status] || `The server answered HTTP ${status}.`;
  return new ApiError(message, HINTS[status] ?? '', status);
}

/** One readable line for any error thrown while talking to the server. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    return error.hint ? `${error.message} ${error.hint}` : error.message;
  }
  if (error instanceof Error) {
    if (error.name === 'NetworkError' || error instanceof TypeError) {
      return 'The Jupyter server does not answer. Is it still running?';
    }
    return error.message || String(error);
  }
  return String(error);
}
