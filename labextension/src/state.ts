/**
 * State of the executions list and of one execution's live view, as pure functions: the panel
 * keeps these values and replaces them with what the functions return.
 */
import { ICellState, IDescribeExecution, ILogEvent } from './types';

export const TERMINAL_STATUSES = ['complete', 'error', 'stopped', 'crashed'];

export const isTerminal = (status: string): boolean =>
  TERMINAL_STATUSES.includes(status);

/** Newest first: by counter, then by creation time. */
export function sortExecutions(
  list: IDescribeExecution[]
): IDescribeExecution[] {
  return [...list].sort(
    (a, b) =>
      (b.counter ?? 0) - (a.counter ?? 0) ||
      (b.ctime ?? '').localeCompare(a.ctime ?? '')
  );
}

/**
 * Insert or replace an execution (by id), keeping the order newest first. A finished execution
 * never goes back to an unfinished status (an answer read before it ended, arriving late).
 */
export function upsertExecution(
  list: IDescribeExecution[],
  execution: IDescribeExecution
): IDescribeExecution[] {
  const known = list.find(item => item.id === execution.id);
  if (known && isTerminal(known.status) && !isTerminal(execution.status)) {
    return list;
  }
  const others = list.filter(item => item.id !== execution.id);
  return sortExecutions([...others, execution]);
}

/** Set one execution's status (an `end` event); unknown ids leave the list as it is. */
export function setStatus(
  list: IDescribeExecution[],
  id: string,
  status: string
): IDescribeExecution[] {
  if (!list.some(item => item.id === id && item.status !== status)) {
    return list;
  }
  return list.map(item => (item.id === id ? { ...item, status } : item));
}

/**
 * Decode one `execution` event of the project's stream (`valohai/projects/{id}/executions/
 * events`): the execution's JSON, or null if it is not one.
 */
export function decodeExecution(data: string): IDescribeExecution | null {
  const parsed = parseJSON(data);
  if (
    !isObject(parsed) ||
    typeof parsed.id !== 'string' ||
    typeof parsed.status !== 'string'
  ) {
    return null;
  }
  return parsed as unknown as IDescribeExecution;
}

/** The list's note of a running notebook: "cell 3" (its position among code cells), or null. */
export function runningCell(execution: IDescribeExecution): string | null {
  if (
    isTerminal(execution.status) ||
    execution.current_cell === null ||
    execution.current_cell === undefined
  ) {
    return null;
  }
  const cell = (execution.cells ?? []).find(
    item => item.index === execution.current_cell
  );
  return cell ? `cell ${cell.position ?? cell.index + 1}` : null;
}

/**
 * The notebook to re-run an execution with: the path the server extension recorded (relative
 * to Lab's root), else null (submitted some other way: the caller keeps its own notebook).
 */
export function rerunPath(execution: IDescribeExecution): string | null {
  const path = execution.runtime_config?.jupyter_path;
  return typeof path === 'string' && path ? path : null;
}

/** One message of the SSE route, decoded. */
export type StreamEvent =
  | { kind: 'log'; id?: string; event: ILogEvent }
  | { kind: 'progress'; id?: string; event: ILogEvent; cell: ICellEvent | null }
  | {
      kind: 'metadata';
      id?: string;
      event: ILogEvent;
      data: Record<string, unknown> | null;
    }
  | { kind: 'end'; status: string }
  | { kind: 'error'; message: string };

/** A notebook cell starting or ending (the `progress` stream). */
export interface ICellEvent {
  type: 'cell';
  state: 'start' | 'end';
  index: number;
  total: number;
  position: number;
  source: string;
  time?: string;
  duration?: number;
  status?: 'ok' | 'error';
}

function parseJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Decode one SSE message (`event:` name and `data:` text) of `valohai/executions/{id}/events`. */
export function decodeStreamEvent(
  kind: string,
  data: string,
  id?: string
): StreamEvent {
  const parsed = parseJSON(data);
  if (!isObject(parsed)) {
    return {
      kind: 'error',
      message: `The server sent an unreadable ${kind} event.`
    };
  }
  if (kind === 'end') {
    return { kind: 'end', status: String(parsed.status ?? '') };
  }
  if (kind === 'error') {
    const message = String(parsed.message ?? 'The event stream failed.');
    return {
      kind: 'error',
      message: parsed.hint ? `${message} ${String(parsed.hint)}` : message
    };
  }
  const event: ILogEvent = {
    stream: String(parsed.stream ?? (kind === 'log' ? 'stdout' : kind)),
    message: String(parsed.message ?? ''),
    time: String(parsed.time ?? '')
  };
  const payload = isObject(parsed.data)
    ? parsed.data
    : parseJSON(event.message);
  if (kind === 'progress') {
    const cell =
      isObject(payload) && payload.type === 'cell'
        ? (payload as unknown as ICellEvent)
        : null;
    return { kind: 'progress', id, event, cell };
  }
  if (kind === 'metadata') {
    return {
      kind: 'metadata',
      id,
      event,
      data: isObject(payload) ? payload : null
    };
  }
  return { kind: 'log', id, event };
}

/** One metric's points: x is the step/epoch/iteration the metadata named, or its order. */
export interface ISeries {
  name: string;
  points: { x: number; y: number }[];
}

/** What the detail view shows of one execution, built up from its events. */
export interface ILiveState {
  logs: ILogEvent[];
  /** Log lines dropped from the front to keep the view bounded. */
  dropped: number;
  metrics: Record<string, ISeries>;
  metadataCount: number;
  cells: Record<number, ICellState>;
  totalCells: number;
  status: string | null;
  lastEventId: string | null;
}

export const MAX_LOG_LINES = 5000;
const X_KEYS = ['step', 'epoch', 'iteration', 'iter'];

export function emptyLive(): ILiveState {
  return {
    logs: [],
    dropped: 0,
    metrics: {},
    metadataCount: 0,
    cells: {},
    totalCells: 0,
    status: null,
    lastEventId: null
  };
}

/** Add the numeric values of one metadata object to the metric series. */
export function addMetrics(
  metrics: Record<string, ISeries>,
  data: Record<string, unknown>,
  order: number
): Record<string, ISeries> {
  const xKey = X_KEYS.find(key => typeof data[key] === 'number');
  const x = xKey ? (data[xKey] as number) : order;
  const next = { ...metrics };
  for (const [name, value] of Object.entries(data)) {
    if (name === xKey || typeof value !== 'number' || !Number.isFinite(value)) {
      continue;
    }
    const series = next[name] ?? { name, points: [] };
    next[name] = { name, points: [...series.points, { x, y: value }] };
  }
  return next;
}

function applyCell(
  cells: Record<number, ICellState>,
  cell: ICellEvent
): Record<number, ICellState> {
  const previous = cells[cell.index];
  const state: ICellState =
    cell.state === 'start'
      ? {
          index: cell.index,
          position: cell.position,
          source: cell.source,
          state: 'running',
          started_at: cell.time ?? null,
          duration: null
        }
      : {
          index: cell.index,
          position: cell.position,
          source: cell.source,
          state: cell.status === 'error' ? 'error' : 'ok',
          started_at: previous?.started_at ?? null,
          duration: cell.duration ?? null
        };
  return { ...cells, [cell.index]: state };
}

/** The live state after one more event. */
export function reduceLive(state: ILiveState, event: StreamEvent): ILiveState {
  switch (event.kind) {
    case 'end':
      return { ...state, status: event.status || state.status };
    case 'error':
      return state;
    case 'progress': {
      const next = { ...state, lastEventId: event.id ?? state.lastEventId };
      if (event.cell) {
        next.cells = applyCell(state.cells, event.cell);
        next.totalCells = event.cell.total || state.totalCells;
      }
      return next;
    }
    case 'metadata': {
      const order = state.metadataCount;
      return {
        ...state,
        lastEventId: event.id ?? state.lastEventId,
        metadataCount: order + 1,
        metrics: event.data
          ? addMetrics(state.metrics, event.data, order)
          : state.metrics
      };
    }
    case 'log': {
      const logs = [...state.logs, event.event];
      const overflow = Math.max(logs.length - MAX_LOG_LINES, 0);
      return {
        ...state,
        lastEventId: event.id ?? state.lastEventId,
        logs: overflow ? logs.slice(overflow) : logs,
        dropped: state.dropped + overflow
      };
    }
  }
}

/** Cell progress as "3/7" (ended cells of all code cells), or null when not a notebook run. */
export function cellProgress(state: ILiveState): string | null {
  const cells = Object.values(state.cells);
  if (!state.totalCells && !cells.length) {
    return null;
  }
  const done = cells.filter(cell => cell.state !== 'running').length;
  return `${done}/${state.totalCells || cells.length}`;
}

/** "1 h 2 min", "3 min 4 s", "5 s", "" for no duration. */
export function formatDuration(seconds: number | null | undefined): string {
  if (
    seconds === null ||
    seconds === undefined ||
    !Number.isFinite(seconds) ||
    seconds < 0
  ) {
    return '';
  }
  const s = Math.round(seconds);
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${s % 60} s`;
  }
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** "12.3 kB" style sizes of outputs. */
export function formatSize(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) {
    return '';
  }
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
