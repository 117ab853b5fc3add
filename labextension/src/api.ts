/** Typed calls of the server extension's routes, all through `requestAPI`. */
import { results } from './answers';
import { IDeployOptions, IDeploymentVersion, ITryAnswer } from './deploy';
import { requestAPI } from './handler';
import { IWorker } from './workers';
import {
  ICreateExecution,
  ICreateProject,
  IDatum,
  IDescribeConnection,
  IDescribeEnvironment,
  IDescribeExecution,
  IDescribeProject
} from './types';

const json = (body: unknown): string => JSON.stringify(body);
const path = (id: string): string => encodeURIComponent(id);

export const api = {
  connection: (): Promise<IDescribeConnection> =>
    requestAPI<IDescribeConnection>('connection'),

  projects: async (): Promise<IDescribeProject[]> =>
    results(await requestAPI('projects')),

  createProject: (body: ICreateProject): Promise<IDescribeProject> =>
    requestAPI<IDescribeProject>('projects', {
      method: 'POST',
      body: json(body)
    }),

  environments: async (): Promise<IDescribeEnvironment[]> =>
    results(await requestAPI('environments')),

  /** The group's workers with state and current execution. */
  environmentWorkers: async (id: string): Promise<IWorker[]> =>
    results(await requestAPI(`environments/${path(id)}/workers`)),

  executions: async (
    project: string,
    limit = 50
  ): Promise<IDescribeExecution[]> =>
    results(
      await requestAPI('executions', {
        query: { project, limit: String(limit) }
      })
    ),

  execution: (id: string): Promise<IDescribeExecution> =>
    requestAPI<IDescribeExecution>(`executions/${path(id)}`),

  run: (body: ICreateExecution): Promise<IDescribeExecution> =>
    requestAPI<IDescribeExecution>('executions', {
      method: 'POST',
      body: json(body)
    }),

  stop: (id: string): Promise<{ message?: string }> =>
    requestAPI(`executions/${path(id)}/stop`, { method: 'POST', body: '{}' }),

  outputs: async (id: string): Promise<IDatum[]> =>
    results(await requestAPI(`executions/${path(id)}/outputs`)),

  /** Copy one output into the Jupyter root; answers the path it was saved at. */
  fetchOutput: (id: string, datum: string): Promise<{ path: string }> =>
    requestAPI(`executions/${path(id)}/outputs/${path(datum)}/fetch`, {
      method: 'POST',
      body: '{}'
    }),

  notebookParameters: (notebookPath: string): Promise<unknown> =>
    requestAPI('notebook-parameters', { query: { path: notebookPath } }),

  /** The endpoints of the execution's code, the project's deployments, the targets. */
  deployOptions: (id: string): Promise<IDeployOptions> =>
    requestAPI<IDeployOptions>(`executions/${path(id)}/deploy-options`),

  /** Create a deployment version of an output (see deploy.deployBody); its builds queue. */
  deploy: (body: Record<string, unknown>): Promise<IDeploymentVersion> =>
    requestAPI<IDeploymentVersion>('deployments', {
      method: 'POST',
      body: json(body)
    }),

  deploymentVersion: (id: string): Promise<IDeploymentVersion> =>
    requestAPI<IDeploymentVersion>(`deployment-versions/${path(id)}`),

  /** POST `payload` (JSON) to the running endpoint, through the server. */
  tryEndpoint: (
    id: string,
    payload: unknown,
    alias?: string
  ): Promise<ITryAnswer> =>
    requestAPI<ITryAnswer>(`deployment-endpoints/${path(id)}/try`, {
      method: 'POST',
      body: json({ payload, alias })
    })
};
