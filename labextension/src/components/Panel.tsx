/** The sidebar panel: ties the server's answers, the live streams and the sections together. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import React, { useCallback, useEffect, useRef, useState } from 'react';

import { connectionSummary, IConnectionSummary, pickProject } from '../answers';
import { api } from '../api';
import { ApiError, errorMessage } from '../errors';
import {
  carryOver,
  formSpec,
  IFormErrors,
  IFormSpec,
  IFormValues,
  initialValues,
  prefillFrom,
  validate
} from '../form';
import { PanelModel } from '../model';
import { rerunPath, setStatus, StreamEvent, upsertExecution } from '../state';
import {
  IDescribeEnvironment,
  IDescribeExecution,
  IDescribeProject
} from '../types';
import { ExecutionDetail } from './Detail';
import { ExecutionList } from './Executions';
import { useLiveStreams, useProjectExecutions, useSignal } from './hooks';
import { useOutputs } from './outputs';
import { RunForm } from './RunForm';
import {
  Banner,
  ConnectionBar,
  EnvironmentPicker,
  ProjectPicker
} from './Setup';

/** While the embedded master starts: look again every 2 s, for up to 2 min. */
const STARTUP_CHECK_MS = 2000;
const STARTUP_CHECKS = 60;
/** Notices (not errors) go away by themselves after this long. */
const NOTICE_MS = 8000;
const PREFS_KEY = 'jupyter-valohai:panel';
const NO_ERRORS: IFormErrors = { parameters: {}, inputs: {} };
const EMPTY_VALUES: IFormValues = { parameters: {}, inputs: {} };

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

const basename = (path: string): string => path.split('/').pop() ?? path;

export function Panel(props: {
  model: PanelModel;
  app: JupyterFrontEnd;
}): JSX.Element {
  const { model, app } = props;
  const prefs = useRef(loadPrefs()).current;
  const formRef = useRef<HTMLDivElement>(null);

  const [connection, setConnection] = useState<IConnectionSummary | null>(null);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
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

  const [notebookPath, setNotebookPath] = useState<string | null>(
    model.notebook?.context.path ?? null
  );
  const [spec, setSpec] = useState<IFormSpec | null>(null);
  const [specError, setSpecError] = useState('');
  const [values, setValues] = useState<IFormValues>(EMPTY_VALUES);
  const [errors, setErrors] = useState<IFormErrors>(NO_ERRORS);
  const [title, setTitle] = useState('');
  const [prefilledFrom, setPrefilledFrom] = useState('');
  const [busy, setBusy] = useState(false);

  const [executions, setExecutions] = useState<IDescribeExecution[]>([]);
  const [loadingList, setLoadingList] = useState(false);
  const [listProblem, setListProblem] = useState('');
  const [selected, setSelected] = useState<string | null>(null);

  const fail = (e: unknown): void => setError(errorMessage(e));

  useEffect(() => {
    if (!notice) {
      return;
    }
    const timer = window.setTimeout(() => setNotice(''), NOTICE_MS);
    return () => window.clearTimeout(timer);
  }, [notice]);

  useEffect(() => {
    window.localStorage.setItem(
      PREFS_KEY,
      JSON.stringify({ project: projectId, environment: environmentId, image })
    );
  }, [projectId, environmentId, image]);

  // --- connection, projects, environments -----------------------------------------------------

  const retry = useRef<number | null>(null);

  const load = useCallback(async (attempt = 0): Promise<void> => {
    if (retry.current !== null) {
      window.clearTimeout(retry.current);
      retry.current = null;
    }
    if (!attempt) {
      setConnection(null);
      setError('');
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
        fail(e);
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
      setNotice(`Project ${project.name} created.`);
      return true;
    } catch (e) {
      fail(e);
      return false;
    }
  };

  // --- the notebook's form ---------------------------------------------------------------------

  const specRef = useRef<IFormSpec | null>(null);
  /** An execution to prefill the form from once its notebook's form is loaded (re-run). */
  const prefillRef = useRef<IDescribeExecution | null>(null);
  const valuesRef = useRef(values);
  valuesRef.current = values;

  const loadSpec = useCallback(
    async (path: string | null, keepValues: boolean): Promise<void> => {
      setSpecError('');
      if (!path) {
        specRef.current = null;
        setSpec(null);
        return;
      }
      try {
        const next = formSpec(await api.notebookParameters(path));
        const previous = specRef.current;
        const prefill = prefillRef.current;
        prefillRef.current = null;
        if (prefill && !keepValues) {
          setValues(initialValues(next, prefillFrom(next, prefill)));
        } else {
          setValues(
            keepValues && previous
              ? carryOver(previous, next, valuesRef.current)
              : initialValues(next)
          );
          if (!keepValues) {
            setPrefilledFrom('');
          }
        }
        specRef.current = next;
        setSpec(next);
        setErrors(NO_ERRORS);
      } catch (e) {
        setSpecError(errorMessage(e));
      }
    },
    []
  );

  useEffect(() => {
    void loadSpec(notebookPath, false);
  }, [notebookPath, loadSpec]);

  useSignal(model.notebookChanged, panel =>
    setNotebookPath(panel?.context.path ?? null)
  );
  useSignal(model.saved, path => {
    if (path === notebookPath) {
      void loadSpec(path, true);
    }
  });
  useSignal(model.runRequested, panel => {
    setSelected(null);
    setNotebookPath(panel.context.path);
    window.requestAnimationFrame(() => {
      formRef.current?.scrollIntoView({ block: 'start' });
      formRef.current
        ?.querySelector<HTMLElement>('input, textarea, button')
        ?.focus();
    });
  });

  const run = async (): Promise<void> => {
    if (!spec || !notebookPath) {
      return;
    }
    const result = validate(spec, values);
    setErrors(result.errors);
    if (!result.ok) {
      setError('Some fields are not valid: fix the marked ones and run again.');
      return;
    }
    setError('');
    setBusy(true);
    try {
      const panel = model.notebook;
      if (
        panel &&
        panel.context.path === notebookPath &&
        panel.context.model.dirty
      ) {
        await panel.context.save(); // the server runs the file as saved
      }
      const execution = await api.run({
        path: notebookPath,
        parameters: result.parameters,
        inputs: result.inputs,
        project: projectId ?? undefined,
        environment: environmentId ?? undefined,
        image: image.trim() || undefined,
        title: title.trim() || undefined
      });
      setNotice(`Execution #${execution.counter} ${execution.status}.`);
      if (execution.project?.id && execution.project.id !== projectId) {
        setProjectId(execution.project.id);
        api.projects().then(setProjects, fail);
      }
      setExecutions(list => upsertExecution(list, execution));
      setSelected(execution.id);
    } catch (e) {
      fail(e);
    } finally {
      setBusy(false);
    }
  };

  // --- executions and their live state ---------------------------------------------------------

  // The list: the project's stream pushes the current page, then every change (one stream);
  // a reload reads the page again and merges it.
  const listProject = connection?.ok ? projectId : null;
  const listProjectRef = useRef(listProject);
  listProjectRef.current = listProject;

  const loadExecutions = useCallback(
    async (project: string | null): Promise<void> => {
      if (!project) {
        return;
      }
      setLoadingList(true);
      try {
        const page = await api.executions(project);
        if (listProjectRef.current === project) {
          setExecutions(list => page.reduce(upsertExecution, list));
        }
      } catch (e) {
        fail(e);
      } finally {
        setLoadingList(false);
      }
    },
    []
  );

  useEffect(() => {
    setExecutions([]);
    setListProblem('');
    void loadExecutions(listProject);
  }, [listProject, loadExecutions]);

  useProjectExecutions(
    listProject,
    pushed => {
      if (pushed.project?.id && pushed.project.id !== listProjectRef.current) {
        return;
      }
      setExecutions(list => upsertExecution(list, pushed));
    },
    (isLive, message) => setListProblem(isLive ? '' : (message ?? ''))
  );

  const refreshExecution = (id: string): void => {
    api
      .execution(id)
      .then(
        execution => setExecutions(list => upsertExecution(list, execution)),
        fail
      );
  };

  const onEvent = (id: string, event: StreamEvent): void => {
    if (event.kind === 'end') {
      setExecutions(list => setStatus(list, id, event.status));
      refreshExecution(id); // duration, end time, message
    } else if (event.kind === 'error' && id === selected) {
      setError(event.message);
    }
  };

  // Live logs, cells and metrics only for the execution shown in detail.
  const live = useLiveStreams(selected ? [selected] : [], onEvent);
  const execution = executions.find(item => item.id === selected) ?? null;
  const outputs = useOutputs(execution?.id ?? null, app);

  const stop = async (): Promise<void> => {
    if (!execution) {
      return;
    }
    setBusy(true);
    try {
      const answer = await api.stop(execution.id);
      setNotice(answer.message || `Stopping #${execution.counter}.`);
      refreshExecution(execution.id);
    } catch (e) {
      fail(e);
    } finally {
      setBusy(false);
    }
  };

  const rerun = (): void => {
    if (!execution) {
      return;
    }
    const target = rerunPath(execution);
    if (target && target !== notebookPath) {
      // the notebook it ran: its form is loaded, then prefilled (see loadSpec)
      prefillRef.current = execution;
      setNotebookPath(target);
      void app.commands.execute('docmanager:open', { path: target });
    } else if (spec) {
      setValues(initialValues(spec, prefillFrom(spec, execution)));
      setErrors(NO_ERRORS);
    }
    setTitle(execution.title ?? '');
    if (execution.environment?.id) {
      setEnvironmentId(execution.environment.id);
    }
    setImage(execution.image ?? '');
    setPrefilledFrom(`execution #${execution.counter}`);
    const ran = execution.notebook ? basename(execution.notebook) : '';
    if (!target && ran && notebookPath && ran !== basename(notebookPath)) {
      setNotice(
        `#${execution.counter} ran ${ran}; the form is for ${notebookPath}. Open ${ran} to re-run it.`
      );
    }
    setSelected(null);
  };

  return (
    <div className="jp-Valohai-panel">
      <ConnectionBar summary={connection} onRefresh={() => void load()} />
      {error && (
        <Banner kind="error" text={error} onDismiss={() => setError('')} />
      )}
      {notice && !error && (
        <Banner kind="notice" text={notice} onDismiss={() => setNotice('')} />
      )}
      {connection?.ok && (
        <>
          <ProjectPicker
            projects={projects}
            selected={projectId}
            onSelect={id => {
              setSelected(null);
              setProjectId(id);
            }}
            onCreate={createProject}
          />
          <EnvironmentPicker
            environments={environments}
            selected={environmentId}
            image={image}
            defaultImage={defaultImage}
            onSelect={setEnvironmentId}
            onImage={setImage}
          />
          {execution ? (
            <ExecutionDetail
              execution={execution}
              live={live[execution.id]}
              outputs={outputs.outputs}
              outputsError={outputs.error}
              busy={busy}
              onBack={() => setSelected(null)}
              onStop={() => void stop()}
              onRerun={rerun}
              onOutputs={outputs.load}
              onOpenOutput={datum => void outputs.open(datum)}
              onDownloadOutput={datum => void outputs.download(datum)}
            />
          ) : (
            <>
              <div ref={formRef}>
                <RunForm
                  notebookPath={notebookPath}
                  spec={spec}
                  specError={specError}
                  values={values}
                  errors={errors}
                  title={title}
                  busy={busy}
                  canRun={Boolean(spec) && !specError}
                  prefilledFrom={prefilledFrom}
                  onValues={setValues}
                  onTitle={setTitle}
                  onRun={() => void run()}
                  onReset={() => {
                    if (spec) {
                      setValues(initialValues(spec));
                    }
                    setPrefilledFrom('');
                  }}
                />
              </div>
              <ExecutionList
                executions={executions}
                selected={selected}
                loading={loadingList}
                problem={listProblem}
                onSelect={setSelected}
                onRefresh={() => void loadExecutions(projectId)}
              />
            </>
          )}
        </>
      )}
    </div>
  );
}
