/** Reading the server's answers, tolerant of the shapes the routes may take. */
import {
  IDescribeConnection,
  IDescribeEnvironment,
  IDescribeProject
} from './types';

/** A list answer: a JSON array, or a page `{results: [...]}` as the master's API sends. */
export function results<T>(answer: unknown): T[] {
  if (Array.isArray(answer)) {
    return answer as T[];
  }
  if (typeof answer === 'object' && answer !== null) {
    const page = answer as Record<string, unknown>;
    for (const key of [
      'results',
      'items',
      'executions',
      'projects',
      'environments',
      'outputs'
    ]) {
      if (Array.isArray(page[key])) {
        return page[key] as T[];
      }
    }
  }
  return [];
}

/** What the connection line of the panel says. */
export interface IConnectionSummary {
  ok: boolean;
  /** The embedded master is still starting: ask again in a moment. */
  starting: boolean;
  /** "Embedded master" or "Remote master". */
  kind: string;
  url: string;
  user: string;
  /** The error with its hint, when the master cannot be reached or is not configured. */
  problem: string;
  /** The server's configured defaults. */
  defaults: { project: string; environment: string; image: string };
}

export function connectionSummary(
  answer: IDescribeConnection
): IConnectionSummary {
  const error = answer.error;
  let problem = '';
  if (typeof error === 'string') {
    problem = error;
  } else if (error && typeof error === 'object') {
    problem = [error.message, error.hint].filter(Boolean).join(' ');
  }
  const starting = answer.state === 'starting';
  if (!problem && starting) {
    problem = 'The embedded master is starting…';
  } else if (!problem && answer.state === 'stopped') {
    problem =
      'The jupyter-valohai extension has stopped. Restart Jupyter to use it again.';
  }
  if (!problem && answer.connected === false) {
    problem = [answer.message || 'Not connected to a master.', answer.hint]
      .filter(Boolean)
      .join(' ');
  }
  const user =
    (answer.user && typeof answer.user === 'object'
      ? answer.user.username
      : undefined) ??
    answer.username ??
    '';
  const embedded = answer.embedded ?? answer.source === 'embedded';
  return {
    ok: !problem,
    starting,
    kind: embedded ? 'Embedded master' : 'Remote master',
    url: answer.url ?? '',
    user,
    problem,
    defaults: {
      project: answer.default_project ?? '',
      environment: answer.environment ?? '',
      image: answer.image ?? ''
    }
  };
}

/** An environment's label in the picker: name, queue depth and workers when known. */
export function environmentLabel(env: IDescribeEnvironment): string {
  const details: string[] = [];
  const queued = env.queue_depth ?? env.queued;
  if (typeof queued === 'number') {
    details.push(`${queued} queued`);
  }
  const workers = Array.isArray(env.workers) ? env.workers.length : env.workers;
  if (typeof workers === 'number') {
    details.push(`${workers} worker${workers === 1 ? '' : 's'}`);
  }
  const name = env.name || env.slug;
  return details.length ? `${name} (${details.join(', ')})` : name;
}

/** A project's linked repository URL, or ''. */
export function repositoryUrl(project: IDescribeProject): string {
  const repo = project.repository;
  if (typeof repo === 'string') {
    return repo;
  }
  return repo?.url ?? '';
}

/** A project picked earlier (by id or name) if it still exists, else the first one. */
export function pickProject(
  projects: IDescribeProject[],
  wanted?: string | null
): string | null {
  const found = projects.find(p => p.id === wanted || p.name === wanted);
  return found?.id ?? projects[0]?.id ?? null;
}
