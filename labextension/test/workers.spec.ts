import { IWorker, workerActivity, workersSummary } from '../src/workers';

const worker = (extra: Partial<IWorker> = {}): IWorker => ({
  id: 'w-1',
  name: 'agent-0',
  state: 'idle',
  ...extra
});

describe('workers', () => {
  it('sums the states, most first', () => {
    expect(workersSummary([])).toBe('No workers.');
    expect(workersSummary([worker()])).toBe('1 worker: 1 idle');
    expect(
      workersSummary([
        worker({ state: 'busy' }),
        worker({ state: 'idle' }),
        worker({ state: 'busy' }),
        worker({ state: 'draining' })
      ])
    ).toBe('4 workers: 2 busy, 1 draining, 1 idle');
  });

  it("says what a worker runs, naming another project's", () => {
    const busy = worker({
      state: 'busy',
      execution: 'e-1',
      current_execution: {
        id: 'e-1',
        counter: 12,
        title: 'train',
        status: 'started',
        project: { id: 'p-2', name: 'iris' }
      }
    });
    expect(workerActivity(busy, 'p-1')).toBe('#12 train (started) in iris');
    expect(workerActivity(busy, 'p-2')).toBe('#12 train (started)');
  });

  it('says what it can when the execution is not readable', () => {
    expect(
      workerActivity(worker({ state: 'busy', execution_hidden: true }))
    ).toBe('an execution of a project you cannot read');
    expect(workerActivity(worker({ state: 'busy', execution: 'e-9' }))).toBe(
      'execution e-9'
    );
    expect(workerActivity(worker({ idle_seconds: 4.6 }))).toBe('idle for 5 s');
    expect(workerActivity(worker({ state: 'draining' }))).toBe('');
  });
});
