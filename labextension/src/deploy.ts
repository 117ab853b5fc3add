/**
 * Deploying an output (pure functions): the choices the server offers for an execution, the
 * form's defaults and checks, the request, the build's progress and the "try it" payload.
 */
import { IDatum } from './types';

/** One `endpoint:` of the execution's valohai.yaml. */
export interface IEndpointDef {
  name: string;
  description?: string;
  image: string;
  port?: number | null;
  wsgi?: string | null;
  server_command?: string | null;
  files: { name: string; path: string }[];
}

export interface IDeploymentRef {
  id: string;
  name: string;
  target?: { name?: string; kind?: string | null } | string;
  registry?: string | null;
}

/** `GET valohai/executions/{id}/deploy-options`. */
export interface IDeployOptions {
  execution: string;
  project: string | null;
  commit: string | null;
  endpoints: IEndpointDef[];
  deployments: IDeploymentRef[];
  targets: { name: string; kind?: string }[];
  problem: { message: string; hint?: string | null } | null;
}

export interface IDeploymentEndpoint {
  id: string;
  name: string;
  status: string;
  failure?: { phase?: string | null; reason?: string | null } | null;
  image?: string | null;
  endpoint_url?: string | null;
  alias_urls?: Record<string, string | null>;
}

export interface IDeploymentVersion {
  id: string;
  name: string;
  status: string;
  deployment: { id: string; name: string };
  alias?: string | null;
  aliases?: string[];
  endpoints: IDeploymentEndpoint[];
}

/** `POST valohai/deployment-endpoints/{id}/try`. */
export interface ITryAnswer {
  url: string;
  status: number;
  content_type?: string;
  body: unknown;
}

/** What the deploy form holds. */
export interface IDeployForm {
  endpoint: string;
  /** File name of the endpoint -> datum id. */
  files: Record<string, string>;
  deployment: string;
  alias: string;
  registry: string;
}

/** Deployment, version and alias names (as the master checks them). */
export const NAME = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;
export const NAME_HINT =
  "lowercase letters, digits, '.' and '-' (at most 63, starting and ending with a letter or digit)";

/** Versions and endpoints are over once they run, failed or were stopped. */
export const BUILD_ENDS = ['running', 'failed', 'stopped'];

const basename = (path: string): string => path.split('/').pop() ?? path;

/** A valid name made from any text ("My Project" -> "my-project"), or "". */
export function slugName(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
    .slice(0, 63)
    .replace(/[^a-z0-9]+$/g, '');
}

/** The output each file of `endpoint` gets: the one of the same file name, else `datum`. */
export function fileChoices(
  endpoint: IEndpointDef | undefined,
  outputs: IDatum[],
  datum: IDatum
): Record<string, string> {
  const files: Record<string, string> = {};
  for (const file of endpoint?.files ?? []) {
    const same = outputs.find(
      out => basename(out.name) === basename(file.path)
    );
    files[file.name] = (same ?? datum).id;
  }
  return files;
}

/**
 * The form's first values for deploying `datum`: the endpoint with a file of that name (else the
 * first), the files by name, the project's first deployment (else one named after the endpoint).
 */
export function deployDefaults(
  options: IDeployOptions,
  outputs: IDatum[],
  datum: IDatum
): IDeployForm {
  const endpoint =
    options.endpoints.find(ep =>
      ep.files.some(f => basename(f.path) === basename(datum.name))
    ) ?? options.endpoints[0];
  const existing = options.deployments[0];
  return {
    endpoint: endpoint?.name ?? '',
    files: fileChoices(endpoint, outputs, datum),
    deployment: existing?.name ?? slugName(endpoint?.name ?? 'model'),
    alias: '',
    registry: existing?.registry ?? ''
  };
}

/** Field -> what is wrong with it (empty when the form can be sent). */
export function validateDeploy(
  form: IDeployForm,
  options: IDeployOptions
): Record<string, string> {
  const errors: Record<string, string> = {};
  const endpoint = options.endpoints.find(ep => ep.name === form.endpoint);
  if (!endpoint) {
    errors.endpoint = 'Pick the endpoint to deploy.';
  }
  for (const file of endpoint?.files ?? []) {
    if (!form.files[file.name]) {
      errors[`file:${file.name}`] = `Pick the output for ${file.path}.`;
    }
  }
  if (!NAME.test(form.deployment.trim())) {
    errors.deployment = `The deployment name takes ${NAME_HINT}.`;
  }
  if (form.alias.trim() && !NAME.test(form.alias.trim())) {
    errors.alias = `An alias takes ${NAME_HINT}.`;
  }
  if (form.registry.trim() && /[/\s]/.test(form.registry.trim())) {
    errors.registry = 'Give the registry as host or host:port only.';
  }
  return errors;
}

/** The body of `POST valohai/deployments`. */
export function deployBody(
  executionId: string,
  form: IDeployForm,
  options: IDeployOptions
): Record<string, unknown> {
  const endpoint = options.endpoints.find(ep => ep.name === form.endpoint);
  const files: Record<string, string> = {};
  for (const file of endpoint?.files ?? []) {
    files[file.name] = form.files[file.name];
  }
  const body: Record<string, unknown> = {
    execution: executionId,
    endpoint: form.endpoint,
    files,
    deployment: form.deployment.trim()
  };
  if (form.alias.trim()) {
    body.alias = form.alias.trim();
  }
  if (form.registry.trim()) {
    body.registry = form.registry.trim();
  }
  return body;
}

/** The "try it" text as JSON, or the reason it is not. */
export function parsePayload(
  text: string
): { ok: true; payload: unknown } | { ok: false; error: string } {
  if (!text.trim()) {
    return { ok: false, error: 'Write the JSON body to send.' };
  }
  try {
    return { ok: true, payload: JSON.parse(text) };
  } catch (e) {
    return {
      ok: false,
      error: `Not JSON: ${e instanceof Error ? e.message : String(e)}`
    };
  }
}

/** The answer of the endpoint as text to show (JSON pretty-printed). */
export function formatAnswer(answer: ITryAnswer): string {
  const body =
    typeof answer.body === 'string'
      ? answer.body
      : JSON.stringify(answer.body, null, 2);
  return `HTTP ${answer.status}\n${body}`;
}

/** One line on a version's state: "building", "running", "failed: <reason>". */
export function versionSummary(version: IDeploymentVersion): string {
  const failed = version.endpoints.find(ep => ep.status === 'failed');
  if (failed?.failure?.reason) {
    const phase = failed.failure.phase ? ` (${failed.failure.phase})` : '';
    return `failed${phase}: ${failed.failure.reason}`;
  }
  return version.status;
}

/** Where the endpoint answers: by version, then by alias. */
export function endpointUrls(
  endpoint: IDeploymentEndpoint
): { label: string; url: string }[] {
  const urls: { label: string; url: string }[] = [];
  if (endpoint.endpoint_url) {
    urls.push({ label: 'version', url: endpoint.endpoint_url });
  }
  for (const [alias, url] of Object.entries(endpoint.alias_urls ?? {})) {
    if (url) {
      urls.push({ label: alias, url });
    }
  }
  return urls;
}

/** A sample payload to start the "try it" box with. */
export const SAMPLE_PAYLOAD = '{\n  "data": []\n}';
