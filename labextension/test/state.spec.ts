import {
  addMetrics,
  cellProgress,
  decodeExecution,
  decodeStreamEvent,
  emptyLive,
  formatDuration,
  formatSize,
  MAX_LOG_LINES,
  reduceLive,
  rerunPath,
  runningCell,
  setStatus,
  sortExecutions,
  StreamEvent,
  upsertExecution
} from '../src/state';
import { IDescribeExecution } from '../src/types';

const exe = (
  id: string,
  counter: number,
  status = 'queued'
): IDescribeExecution => ({
  id,
  counter,
  status
});

describe('executions list', () => {
  it('sorts newest first', () => {
    const sorted = sortExecutions([exe('a', 1), exe('c', 3), exe('b', 2)]);
    expect(sorted.map(e => e.id)).toEqual(['c', 'b', 'a']);
  });

  it('upserts by id and keeps the order', () => {
    let list = [exe('a', 1), exe('b', 2)];
    list = upsertExecution(list, exe('c', 3));
    list = upsertExecution(list, exe('a', 1, 'complete'));
    expect(list.map(e => [e.id, e.status])).toEqual([
      ['c', 'queued'],
      ['b', 'queued'],
      ['a', 'complete']
    ]);
  });

  it('sets a status, leaving the list untouched when nothing changes', () => {
    const list = [exe('a', 1, 'started')];
    expect(setStatus(list, 'a', 'complete')[0].status).toBe('complete');
    expect(setStatus(list, 'a', 'started')).toBe(list);
    expect(setStatus(list, 'zzz', 'complete')).toBe(list);
  });

  it('never takes a finished execution back to an unfinished status', () => {
    const list = [exe('a', 1, 'complete')];
    expect(upsertExecution(list, exe('a', 1, 'started'))[0].status).toBe(
      'complete'
    );
    expect(upsertExecution(list, exe('a', 1, 'error'))[0].status).toBe('error');
  });
});

describe('the pushed list', () => {
  it('decodes execution events, refusing what is not one', () => {
    const data = JSON.stringify({ id: 'e-1', counter: 4, status: 'started' });
    expect(decodeExecution(data)).toEqual({
      id: 'e-1',
      counter: 4,
      status: 'started'
    });
    expect(decodeExecution('not json')).toBeNull();
    expect(decodeExecution('[1]')).toBeNull();
    expect(decodeExecution(JSON.stringify({ id: 'e-1' }))).toBeNull();
  });

  it('names the running cell of an unfinished notebook run', () => {
    const running: IDescribeExecution = {
      ...exe('a', 1, 'started'),
      current_cell: 4,
      cells: [
        { index: 2, position: 1, source: 'x = 1', state: 'ok' },
        { index: 4, position: 2, source: 'train()', state: 'running' }
      ]
    };
    expect(runningCell(running)).toBe('cell 2');
    expect(runningCell({ ...running, status: 'stopped' })).toBeNull();
    expect(runningCell({ ...running, current_cell: null })).toBeNull();
    expect(runningCell(exe('b', 2, 'started'))).toBeNull();
  });

  it('re-runs the notebook the extension recorded, when it did', () => {
    expect(
      rerunPath({
        ...exe('a', 1),
        runtime_config: { jupyter_path: 'work/train.ipynb' }
      })
    ).toBe('work/train.ipynb');
    expect(rerunPath({ ...exe('a', 1), runtime_config: {} })).toBeNull();
    expect(rerunPath(exe('a', 1))).toBeNull();
  });
});

describe('decodeStreamEvent', () => {
  it('decodes log lines', () => {
    const event = decodeStreamEvent(
      'log',
      JSON.stringify({ stream: 'stdout', message: 'hello', time: 't' }),
      '5-0'
    );
    expect(event).toEqual({
      kind: 'log',
      id: '5-0',
      event: { stream: 'stdout', message: 'hello', time: 't' }
    });
  });

  it('decodes progress from data, or from the message text', () => {
    const cell = {
      type: 'cell',
      state: 'start',
      index: 2,
      total: 4,
      position: 1,
      source: 'x = 1'
    };
    const withData = decodeStreamEvent(
      'progress',
      JSON.stringify({
        stream: 'progress',
        message: JSON.stringify(cell),
        time: 't',
        data: cell
      })
    );
    expect(withData.kind === 'progress' && withData.cell).toEqual(cell);
    const fromText = decodeStreamEvent(
      'progress',
      JSON.stringify({
        stream: 'progress',
        message: JSON.stringify(cell),
        time: 't'
      })
    );
    expect(fromText.kind === 'progress' && fromText.cell).toEqual(cell);
  });

  it('decodes metadata, the end and server errors', () => {
    const meta = decodeStreamEvent(
      'metadata',
      JSON.stringify({
        stream: 'metadata',
        message: '{"loss": 0.5}',
        time: 't'
      })
    );
    expect(meta.kind === 'metadata' && meta.data).toEqual({ loss: 0.5 });
    expect(decodeStreamEvent('end', '{"status": "complete"}')).toEqual({
      kind: 'end',
      status: 'complete'
    });
    expect(
      decodeStreamEvent(
        'error',
        JSON.stringify({
          message: 'The master does not answer.',
          hint: 'Start it.'
        })
      )
    ).toEqual({
      kind: 'error',
      message: 'The master does not answer. Start it.'
    });
    expect(decodeStreamEvent('log', 'not json').kind).toBe('error');
  });
});

describe('live state', () => {
  const log = (message: string, id?: string): StreamEvent => ({
    kind: 'log',
    id,
    event: { stream: 'stdout', message, time: 't' }
  });

  it('collects log lines and remembers the last event id', () => {
    let state = emptyLive();
    state = reduceLive(state, log('one', '1-0'));
    state = reduceLive(state, log('two', '2-0'));
    expect(state.logs.map(l => l.message)).toEqual(['one', 'two']);
    expect(state.lastEventId).toBe('2-0');
  });

  it('keeps at most MAX_LOG_LINES lines and counts the dropped ones', () => {
    let state = emptyLive();
    for (let i = 0; i < MAX_LOG_LINES + 3; i++) {
      state = reduceLive(state, log(String(i)));
    }
    expect(state.logs.length).toBe(MAX_LOG_LINES);
    expect(state.dropped).toBe(3);
    expect(state.logs[0].message).toBe('3');
  });

  it('builds metric series, x from step/epoch or the order', () => {
    let metrics = addMetrics(
      {},
      { epoch: 1, loss: 0.9, acc: 0.5, note: 'x' },
      0
    );
    metrics = addMetrics(metrics, { epoch: 2, loss: 0.7 }, 1);
    expect(metrics.loss.points).toEqual([
      { x: 1, y: 0.9 },
      { x: 2, y: 0.7 }
    ]);
    expect(metrics.acc.points).toEqual([{ x: 1, y: 0.5 }]);
    expect(metrics.note).toBeUndefined();
    expect(metrics.epoch).toBeUndefined();
    const ordered = addMetrics({}, { loss: 1 }, 7);
    expect(ordered.loss.points).toEqual([{ x: 7, y: 1 }]);
  });

  it('follows metadata events in order', () => {
    let state = emptyLive();
    for (const loss of [3, 2, 1]) {
      state = reduceLive(state, {
        kind: 'metadata',
        event: { stream: 'metadata', message: '', time: 't' },
        data: { loss }
      });
    }
    expect(state.metrics.loss.points.map(p => [p.x, p.y])).toEqual([
      [0, 3],
      [1, 2],
      [2, 1]
    ]);
  });

  it('tracks cells from progress events', () => {
    const progress = (cell: object): StreamEvent => ({
      kind: 'progress',
      event: { stream: 'progress', message: '', time: 't' },
      cell: { type: 'cell', total: 2, source: 'print(1)', ...cell } as never
    });
    let state = emptyLive();
    expect(cellProgress(state)).toBeNull();
    state = reduceLive(
      state,
      progress({ state: 'start', index: 1, position: 1, time: 'a' })
    );
    expect(state.cells[1].state).toBe('running');
    expect(cellProgress(state)).toBe('0/2');
    state = reduceLive(
      state,
      progress({
        state: 'end',
        index: 1,
        position: 1,
        duration: 0.5,
        status: 'ok'
      })
    );
    expect(state.cells[1]).toMatchObject({
      state: 'ok',
      started_at: 'a',
      duration: 0.5
    });
    state = reduceLive(
      state,
      progress({ state: 'start', index: 3, position: 2 })
    );
    state = reduceLive(
      state,
      progress({ state: 'end', index: 3, position: 2, status: 'error' })
    );
    expect(state.cells[3].state).toBe('error');
    expect(cellProgress(state)).toBe('2/2');
  });

  it('takes the terminal status from the end event', () => {
    const state = reduceLive(emptyLive(), { kind: 'end', status: 'stopped' });
    expect(state.status).toBe('stopped');
  });
});

describe('formatting', () => {
  it('formats durations', () => {
    expect(formatDuration(null)).toBe('');
    expect(formatDuration(4.4)).toBe('4 s');
    expect(formatDuration(125)).toBe('2 min 5 s');
    expect(formatDuration(3725)).toBe('1 h 2 min');
  });

  it('formats sizes', () => {
    expect(formatSize(undefined)).toBe('');
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(12345)).toBe('12.3 kB');
    expect(formatSize(5e9)).toBe('5.0 GB');
  });
});
