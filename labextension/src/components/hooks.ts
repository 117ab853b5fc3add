/**
 * React hooks of the panel: Lumino signals, the project's pushed executions (one stream for the
 * list) and the live events of the execution shown in detail.
 */
import { ISignal } from '@lumino/signaling';
import { useEffect, useRef, useState } from 'react';

import { subscribe, subscribeProject } from '../events';
import { emptyLive, ILiveState, reduceLive, StreamEvent } from '../state';
import { IDescribeExecution } from '../types';

/** Call `handler` on each emission of `signal` while the component is mounted. */
export function useSignal<T, A>(
  signal: ISignal<T, A>,
  handler: (args: A) => void
): void {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    const slot = (_: T, args: A): void => ref.current(args);
    signal.connect(slot);
    return () => {
      signal.disconnect(slot);
    };
  }, [signal]);
}

/**
 * One event stream per id in `ids` (opened when an id appears, closed when it goes), with the
 * live state each stream has built. `onEvent` sees every event too (status updates).
 */
export function useLiveStreams(
  ids: string[],
  onEvent: (id: string, event: StreamEvent) => void
): Record<string, ILiveState> {
  const [live, setLive] = useState<Record<string, ILiveState>>({});
  const streams = useRef(new Map<string, () => void>());
  const handler = useRef(onEvent);
  handler.current = onEvent;
  const key = ids.join(',');

  useEffect(() => {
    const wanted = new Set(ids);
    for (const [id, close] of streams.current) {
      if (!wanted.has(id)) {
        close();
        streams.current.delete(id);
      }
    }
    setLive(previous => {
      const kept: Record<string, ILiveState> = {};
      for (const id of ids) {
        kept[id] = previous[id] ?? emptyLive();
      }
      return kept;
    });
    for (const id of ids) {
      if (streams.current.has(id)) {
        continue;
      }
      const close = subscribe(id, event => {
        setLive(previous =>
          id in previous
            ? { ...previous, [id]: reduceLive(previous[id], event) }
            : previous
        );
        handler.current(id, event);
      });
      streams.current.set(id, close);
    }
  }, [key]);

  useEffect(
    () => () => {
      for (const close of streams.current.values()) {
        close();
      }
      streams.current.clear();
    },
    []
  );
  return live;
}

/**
 * The project's executions pushed by ONE event stream (null: none open): `onExecution` sees
 * each, `onState` whether the list is live.
 */
export function useProjectExecutions(
  projectId: string | null,
  onExecution: (execution: IDescribeExecution) => void,
  onState: (live: boolean, message?: string) => void
): void {
  const handlers = useRef({ onExecution, onState });
  handlers.current = { onExecution, onState };
  useEffect(() => {
    if (!projectId) {
      return;
    }
    return subscribeProject(
      projectId,
      execution => handlers.current.onExecution(execution),
      (live, message) => handlers.current.onState(live, message)
    );
  }, [projectId]);
}
