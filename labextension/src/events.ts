/** Live events of one execution, pushed by the server (`GET valohai/executions/{id}/events`). */
import { eventsUrl } from './handler';
import { decodeStreamEvent, StreamEvent } from './state';

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
  const source = new EventSource(eventsUrl(executionId, after));
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
