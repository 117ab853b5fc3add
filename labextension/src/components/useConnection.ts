/**
 * The panel's connection: the master's state (looked at again while the embedded one starts),
 * the projects and environments there, the chosen ones (kept in localStorage), a new project.
 */
import {
  Dispatch,
  SetStateAction,
  useCallback,
  useEffect,
  useRef,
  useState
} from 'react';

import { connectionSummary, IConnectionSummary, pickProject } from '../answers';
import { api } from '../api';
import { ApiError, errorMessage } from '../errors';
import { IDescribeEnvironment, IDescribeProject } from '../types';

/** While the embedded master starts: look again every 2 s, for up to 2 min. */
const STARTUP_CHECK_MS = 2000;
const STARTUP_CHECKS = 60;
const PREFS_KEY = 'jupyter-valohai:panel';

interface IPrefs {
  project?: string | null;
  environment?: string | null;
  image?: string;
}

function loadPrefs(): IPrefs {
  try {
    return JSON.parse(window.localStorage.getItem(PREFS_KEY) ?? '{}') as IPrefs;
  } catch {
    return {};
  }
}

export interface IConnection {
  connection: IConnectionSummary | null;
  projects: IDescribeProject[];
  setProjects: Dispatch<SetStateAction<IDescribeProject[]>>;
  projectId: string | null;
  setProjectId: Dispatch<SetStateAction<string | null>>;
  environments: IDescribeEnvironment[];
  environmentId: string | null;
  setEnvironmentId: (id: string | null) => void;
  image: string;
  setImage: (image: string) => void;
  defaultImage: string;
  /** Look at the connection again (and the projects and environments). */
  load: () => void;
  /** Create a project and select it; false (the error reported) when refused. */
  createProject: (name: string) => Promise<boolean>;
}

/** `onError` gets every failure as a readable line ('' on a fresh start), `onNotice` news. */
export function useConnection(
  onError: (message: string) => void,
  onNotice: (message: string) => void
): IConnection {
  const prefs = useRef(loadPrefs()).current;
  const [connection, setConnection] = useState<IConnectionSummary | null>(null);
  const [projects, setProjects] = useState<IDescribeProject[]>([]);
  const [projectId, setProjectId] = useState<string | null>(
    prefs.project ?? null
  );
  const [environments, setEnvironments] = useState<IDescribeEnvironment[]>([]);
  const [environmentId, setEnvironmentId] = useState<string | null>(
    prefs.environment ?? null
  );
  const [image, setImage] = useState(prefs.image ?? '');
  const [defaultImage, setDefaultImage] = useState('');
  const handlers = useRef({ onError, onNotice });
  handlers.current = { onError, onNotice };

  useEffect(() => {
    window.localStorage.setItem(
      PREFS_KEY,
      JSON.stringify({ project: projectId, environment: environmentId, image })
    );
  }, [projectId, environmentId, image]);

  const retry = useRef<number | null>(null);

  const load = useCallback(async (attempt = 0): Promise<void> => {
    if (retry.current !== null) {
      window.clearTimeout(retry.current);
      retry.current = null;
    }
    if (!attempt) {
      setConnection(null);
      handlers.current.onError('');
    }
    let summary: IConnectionSummary;
    try {
      summary = connectionSummary(await api.connection());
    } catch (e) {
      summary = {
        ok: false,
        starting: false,
        kind: '',
        url: '',
        user: '',
        problem: errorMessage(e),
        defaults: { project: '', environment: '', image: '' }
      };
    }
    setConnection(summary);
    if (summary.starting && attempt < STARTUP_CHECKS) {
      // the embedded master comes up once, a few seconds after Jupyter: look again then
      retry.current = window.setTimeout(
        () => void load(attempt + 1),
        STARTUP_CHECK_MS
      );
      return;
    }
    if (!summary.ok) {
      return;
    }
    setDefaultImage(summary.defaults.image);
    try {
      const [projectList, envList] = await Promise.all([
        api.projects(),
        api.environments()
      ]);
      setProjects(projectList);
      setProjectId(current =>
        pickProject(projectList, current || summary.defaults.project)
      );
      setEnvironments(envList);
      setEnvironmentId(current => {
        const wanted = current || summary.defaults.environment;
        const found = envList.find(env =>
          [env.id, env.slug, env.name].includes(wanted ?? '')
        );
        return (
          found?.id ?? envList.find(env => env.enabled !== false)?.id ?? null
        );
      });
    } catch (e) {
      if (e instanceof ApiError && e.status === 503) {
        // configured, but the master does not answer: say so where the connection is shown
        setConnection({ ...summary, ok: false, problem: errorMessage(e) });
      } else {
        handlers.current.onError(errorMessage(e));
      }
    }
  }, []);

  useEffect(
    () => () => {
      if (retry.current !== null) {
        window.clearTimeout(retry.current);
      }
    },
    []
  );

  useEffect(() => {
    void load();
  }, [load]);

  const createProject = async (name: string): Promise<boolean> => {
    try {
      const project = await api.createProject({ name });
      setProjects(list => [...list.filter(p => p.id !== project.id), project]);
      setProjectId(project.id);
      handlers.current.onNotice(`Project ${project.name} created.`);
      return true;
    } catch (e) {
      handlers.current.onError(errorMessage(e));
      return false;
    }
  };

  return {
    connection,
    projects,
    setProjects,
    projectId,
    setProjectId,
    environments,
    environmentId,
    setEnvironmentId,
    image,
    setImage,
    defaultImage,
    load: () => void load(),
    createProject
  };
}
