/**
 * The JSON shapes of the server extension's routes (`<base_url>valohai/...`), mirroring the
 * master's API objects (Valohai API v0) that the server extension relays.
 */

/** `GET valohai/connection`: where the master is and who we are there. */
export interface IDescribeConnection {
  /** starting (the embedded master is coming up), ready, failed or stopped. */
  state?: string;
  url?: string | null;
  /** Where the connection came from (env, login file, embedded default...). */
  source?: string | null;
  /** True for the embedded master started by `jupyter valohai up`. */
  embedded?: boolean;
  connected?: boolean;
  user?: { id?: string; username?: string } | null;
  username?: string;
  error?: { message?: string; hint?: string } | string | null;
  message?: string;
  hint?: string;
  /** Defaults configured on the server (c.Valohai.default_project, environment, image). */
  default_project?: string | null;
  environment?: string | null;
  image?: string | null;
}

export interface IDescribeProject {
  id: string;
  name: string;
  description?: string;
  owner?: { id?: string; username?: string } | string | null;
  /** A linked Git repository, when the master supports linking one. */
  repository?: { url?: string } | string | null;
  ctime?: string;
}

export interface ICreateProject {
  name: string;
  description?: string;
  /** A Git repository URL to link (sent only when given). */
  repository?: string;
}

export interface IDescribeEnvironment {
  id: string;
  name: string;
  slug: string;
  description?: string;
  enabled?: boolean;
  /** Executions waiting in this group's queue (when the server reports it). */
  queue_depth?: number;
  queued?: number;
  /** Workers (agents) serving this group (when the server reports it). */
  workers?: number | unknown[];
}

/** Execution statuses, as Valohai names them. */
export type ExecutionStatus =
  | 'created'
  | 'queued'
  | 'started'
  | 'stopping'
  | 'complete'
  | 'error'
  | 'stopped'
  | 'crashed';

export interface ICellState {
  index: number;
  position: number;
  source: string;
  state: 'running' | 'ok' | 'error';
  started_at?: string | null;
  duration?: number | null;
}

export interface IDescribeExecution {
  id: string;
  counter: number;
  status: ExecutionStatus | string;
  step?: string;
  title?: string;
  project?: { id: string; name?: string };
  environment?: { id: string; name?: string; slug?: string };
  parameters?: Record<string, unknown>;
  inputs?: { name: string; urls: string[] }[];
  image?: string;
  kind?: string;
  notebook?: string | null;
  ctime?: string;
  started_at?: string | null;
  ended_at?: string | null;
  duration?: number | null;
  status_message?: string;
  exit_code?: number | null;
  metadata?: Record<string, unknown>;
  cells?: ICellState[];
  current_cell?: number | null;
  creator?: { username?: string };
  /** Set by the server extension: `jupyter_path` is the file it ran, relative to Lab's root. */
  runtime_config?: { jupyter_path?: string } & Record<string, unknown>;
}

/** `POST valohai/executions`: a RunRequest; `path` is relative to the Jupyter root dir. */
export interface ICreateExecution {
  path: string;
  parameters: Record<string, unknown>;
  inputs: Record<string, string[]>;
  project?: string;
  environment?: string;
  image?: string;
  title?: string;
}

/** One output file of an execution (a datum). */
export interface IDatum {
  id: string;
  name: string;
  size?: number;
  sha256?: string;
  ctime?: string;
}

/** One log event as the master stores it. */
export interface ILogEvent {
  stream: string;
  message: string;
  time: string;
}
