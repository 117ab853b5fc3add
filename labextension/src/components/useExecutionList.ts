/**
 * The project's executions: the project's stream pushes the current page, then every change (one
 * stream); a reload reads the page again and merges it.
 */
import {
  Dispatch,
  SetStateAction,
  useCallback,
  useEffect,
  useRef,
  useState
} from 'react';

import { api } from '../api';
import { errorMessage } from '../errors';
import { upsertExecution } from '../state';
import { IDescribeExecution } from '../types';
import { useProjectExecutions } from './hooks';

export interface IExecutionList {
  executions: IDescribeExecution[];
  setExecutions: Dispatch<SetStateAction<IDescribeExecution[]>>;
  loading: boolean;
  /** Why the list is not live ('' while it is). */
  problem: string;
  reload: () => void;
  /** Read one execution again (duration, end time, message) and merge it. */
  refresh: (id: string) => void;
}

/** `project`: the project listed (null: none); `onError` gets failures as readable lines. */
export function useExecutionList(
  project: string | null,
  onError: (message: string) => void
): IExecutionList {
  const [executions, setExecutions] = useState<IDescribeExecution[]>([]);
  const [loading, setLoading] = useState(false);
  const [problem, setProblem] = useState('');
  const projectRef = useRef(project);
  projectRef.current = project;
  const fail = useRef(onError);
  fail.current = onError;

  const load = useCallback(async (id: string | null): Promise<void> => {
    if (!id) {
      return;
    }
    setLoading(true);
    try {
      const page = await api.executions(id);
      if (projectRef.current === id) {
        setExecutions(list => page.reduce(upsertExecution, list));
      }
    } catch (e) {
      fail.current(errorMessage(e));
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    setExecutions([]);
    setProblem('');
    void load(project);
  }, [project, load]);

  useProjectExecutions(
    project,
    pushed => {
      if (pushed.project?.id && pushed.project.id !== projectRef.current) {
        return;
      }
      setExecutions(list => upsertExecution(list, pushed));
    },
    (isLive, message) => setProblem(isLive ? '' : (message ?? ''))
  );

  const refresh = (id: string): void => {
    api.execution(id).then(
      execution => setExecutions(list => upsertExecution(list, execution)),
      e => fail.current(errorMessage(e))
    );
  };

  return {
    executions,
    setExecutions,
    loading,
    problem,
    reload: () => void load(project),
    refresh
  };
}
