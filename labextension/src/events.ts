/**
 * Pushed events: one execution's (`GET valohai/executions/{id}/events`, for the detail view) and
 * a project's executions (`GET valohai/projects/{id}/executions/events`, for the list).
 */
import { eventsUrl, projectEventsUrl } from './handler';
import { decodeExecution, decodeStreamEvent, StreamEvent } from './state';
import { IDescribeExecution } from './types';

/** After the project's stream failed, open it again this long after. */
export const PROJECT_RETRY_MS = 5000;

const KINDS = ['log', 'progress', 'metadata', 'end', 'error'];

/**
 * Open an EventSource on an execution's events; `onEvent` gets each decoded event, the last
 * one being `end` (the stream closes then). Returns the function that closes the stream.
 *
 * The browser reconnects by itself after a dropped connection, sending `Last-Event-ID`, so
 * nothing is seen twice. A refused stream (e.g. unknown execution) ends with an `error` event.
 */
export function subscribe(
  executionId: string,
  onEvent: (event: StreamEvent) => void,
  after?: string | null
): () => void {
  return subscribeUrl(eventsUrl(executionId, after), onEvent);
}

/** `subscribe` on any stream of the same events (e.g. a deployment endpoint's build log). */
export function subscribeUrl(
  url: string,
  onEvent: (event: StreamEvent) => void
): () => void {
  const source = new EventSource(url);
  let closed = false;
  const close = (): void => {
    closed = true;
    source.close();
  };
  for (const kind of KINDS) {
    source.addEventListener(kind, (message: Event) => {
      const { data, lastEventId } = message as MessageEvent<string>;
      if (kind === 'error' && typeof data !== 'string') {
        // the EventSource's own error (connection lost or refused), not a server message
        if (source.readyState === EventSource.CLOSED && !closed) {
          closed = true;
          onEvent({
            kind: 'error',
            message:
              'The live event stream was refused. Reopen the execution to retry.'
          });
        }
        return;
      }
      const event = decodeStreamEvent(kind, data, lastEventId || undefined);
      if (closed) {
        return;
      }
      if (event.kind === 'end' || event.kind === 'error') {
        close(); // the server is done with this stream: no reconnecting
      }
      onEvent(event);
    });
  }
  return close;
}

/**
 * Open ONE EventSource on a project's executions: `onExecution` gets the current page (oldest
 * first) and then every execution whose status or cells change, wherever it was started.
 * `onState` says whether the list is live (false with a message while the stream is down; it
 * is opened again after `retryMs`, resuming after the last event seen). Returns the function
 * that closes it.
 */
export function subscribeProject(
  projectId: string,
  onExecution: (execution: IDescribeExecution) => void,
  onState: (live: boolean, message?: string) => void,
  retryMs = PROJECT_RETRY_MS
): () => void {
  let source: EventSource | null = null;
  let timer: number | null = null;
  let closed = false;
  let last: string | null = null;

  const reopenLater = (message: string): void => {
    source?.close();
    source = null;
    if (closed) {
      return;
    }
    onState(false, message);
    timer = window.setTimeout(() => {
      timer = null;
      open();
    }, retryMs);
  };

  const open = (): void => {
    const current = new EventSource(projectEventsUrl(projectId, last));
    source = current;
    current.addEventListener('open', () => onState(true));
    current.addEventListener('execution', (message: Event) => {
      const { data, lastEventId } = message as MessageEvent<string>;
      if (lastEventId) {
        last = lastEventId;
      }
      const execution = decodeExecution(data);
      if (execution && !closed) {
        onExecution(execution);
      }
    });
    current.addEventListener('error', (message: Event) => {
      const { data } = message as MessageEvent<unknown>;
      if (typeof data === 'string') {
        const event = decodeStreamEvent('error', data);
        reopenLater(
          event.kind === 'error' ? event.message : 'The live list failed.'
        );
      } else if (current.readyState === EventSource.CLOSED) {
        reopenLater('The live list was refused.');
      }
      // else: the browser reconnects by itself (sending Last-Event-ID)
    });
  };

  open();
  return () => {
    closed = true;
    if (timer !== null) {
      window.clearTimeout(timer);
    }
    source?.close();
  };
}
