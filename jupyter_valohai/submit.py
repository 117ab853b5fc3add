"""Turn a notebook, a script, a cell's code or a valohai.yaml step into an execution.

``prepare_run`` does every local check (no network): it reads the notebook / script / step, types
and checks the parameters, writes the valohai.yaml the run needs and packs the code snapshot.
``submit`` / ``asubmit`` then check the project and the environment on the master before
uploading anything, upload the snapshot as an ad-hoc commit and create the execution. Any refusal
is one :class:`~jupyter_valohai.errors.ValohaiError`, and no execution exists after it.

The generated valohai.yaml lives at ``.jupyter-valohai/valohai.yaml`` in the snapshot:

- a notebook: a step named after it with ``source-path: <notebook>`` (the master runs it with
  papermill), ``command: []``, the typed parameters of its ``parameters`` cell and its inputs;
- a ``.py`` file: ``python <file> {parameters}``, parameters typed from ``valohai.prepare()``
  defaults and from the given values;
- code (``%%valohai``): the code saved as ``cell.py`` beside the working directory's files, run
  like a ``.py`` file.

A ``valohai.yaml`` (``path`` ending in .yaml/.yml) runs one of its own steps as written (``step``
names it unless there is only one), its parameters checked against the step's types.

The snapshot holds the folder of the notebook / script / valohai.yaml (for code: ``cwd``), so a
notebook takes the files beside it; see :mod:`jupyter_valohai.snapshot` for what is left out.
The image is the request's, else the step's own (valohai.yaml), else ``default_image`` (the
configured one), else ``python:3.11``. Without a project the run goes to the project "default",
created on first use.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .client import AsyncClient, Client, calls
from .errors import InvalidInput
from .notebook import (
    Param,
    coerce_overrides,
    infer_text_type,
    notebook_inputs,
    notebook_parameters,
    params_from_values,
    prepare_calls,
    read_notebook,
    uri_lists,
)
from .snapshot import DEFAULT_MAX_BYTES, snapshot
from .valohai_config import get_step, parse_config, resolve_inputs, resolve_parameters

GENERATED_YAML = ".jupyter-valohai/valohai.yaml"
CELL_FILE = "cell.py"
DEFAULT_IMAGE = "python:3.11"
DEFAULT_PROJECT = "default"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class RunRequest:
    """What to run and how; ``path`` is relative to ``cwd`` (or absolute)."""

    path: str | None = None
    code: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    environment: str | None = None
    image: str | None = None
    title: str | None = None
    project: str | None = None
    step: str | None = None
    cwd: str = "."


@dataclass
class PreparedRun:
    """A checked run: the snapshot to upload and the execution's body fields."""

    kind: str  # notebook, script, cell or step
    root: str  # the folder the snapshot holds
    tarball: bytes
    yaml_path: str  # of the valohai.yaml inside the tarball
    step: str
    body: dict[str, Any]  # create_execution fields besides project and commit
    notebook: str | None = None  # the notebook's path in the snapshot (the output's name)
    config_text: str = ""


def _step_name(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "run"


def _yaml_params(params: dict[str, Param]) -> list[dict[str, Any]]:
    return [{"name": p.name, "type": p.type, "default": p.default} for p in params.values()]


def _yaml_inputs(inputs: dict[str, list[str]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, uris in inputs.items():
        item: dict[str, Any] = {"name": name}
        if uris:
            item["default"] = uris if len(uris) > 1 else uris[0]
        else:
            item["optional"] = True
        out.append(item)
    return out


URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")


def _checked_inputs(inputs: Mapping[str, Any]) -> dict[str, list[str]]:
    """Inputs as name -> URIs; a value that is no URI (a local path, say) is refused here."""
    out: dict[str, list[str]] = {}
    for name, value in inputs.items():
        uris = [value] if isinstance(value, str) else value
        if not isinstance(uris, list | tuple) or not all(isinstance(u, str) for u in uris):
            raise InvalidInput(
                f"Input {name!r} must be a URI or a list of URIs.",
                hint="e.g. --input data=https://host/data.csv or datum://<id>.",
            )
        for uri in uris:
            if not URI.match(uri.strip()):
                raise InvalidInput(
                    f"Input {name!r}: {uri!r} is not a URI.",
                    hint="Inputs are URIs (https://, s3://, datum://<id>...); files beside the "
                    "notebook travel with it in the snapshot.",
                )
        out[name] = [u.strip() for u in uris]
    return out


def _script_params(source: str, overrides: dict[str, Any]) -> dict[str, Param]:
    """Parameters of a script: valohai.prepare() defaults, then the overrides' own types."""
    params = params_from_values(prepare_calls([source]).parameters or {})
    for name, value in overrides.items():
        if name in params:
            continue
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidInput(f"Bad parameter name {name!r}.", hint="Use a Python identifier.")
        if isinstance(value, str):
            kind, typed = infer_text_type(value)
            params[name] = Param(name, kind, typed)
        else:
            inferred = params_from_values({name: value})
            if not inferred:
                raise InvalidInput(
                    f"Parameter {name!r} must be a number, text or true/false, not {value!r}."
                )
            params.update(inferred)
    return params


def _endpoints_beside(root: str) -> list[dict[str, Any]]:
    """The ``endpoint:`` items of the valohai.yaml in ``root`` (the snapshot's folder), if any:
    the generated config carries them, so the run's commit can be deployed."""
    path = os.path.join(root, "valohai.yaml")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        if not parse_config(text, source=path).endpoints:
            return []
    except InvalidInput:  # the notebook still runs; its commit just has nothing to deploy
        return []
    return [item for item in yaml.safe_load(text) if isinstance(item, dict) and "endpoint" in item]


def _config(
    step: dict[str, Any], endpoints: list[dict[str, Any]] | None = None
) -> tuple[str, bytes]:
    items = [{"step": step}, *(endpoints or [])]
    text = yaml.safe_dump(items, sort_keys=False, allow_unicode=True)
    parse_config(text, source=GENERATED_YAML)  # our own output must be valid for the master
    return text, text.encode("utf-8")


def _generated(
    req: RunRequest,
    kind: str,
    root: str,
    entry: str | None,
    step: dict[str, Any],
    overrides: dict[str, Any],
    inputs: dict[str, list[str]],
    max_bytes: int,
    extra: dict[str, bytes] | None = None,
) -> PreparedRun:
    text, data = _config(step, _endpoints_beside(root))
    tarball = snapshot(root, entry, max_bytes, extra={**(extra or {}), GENERATED_YAML: data})
    body = _body(req, step["name"], overrides, inputs, step["image"])
    notebook = step.get("source-path")
    return PreparedRun(kind, root, tarball, GENERATED_YAML, step["name"], body, notebook, text)


def _body(
    req: RunRequest,
    step: str,
    parameters: dict[str, Any],
    inputs: dict[str, list[str]],
    image: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"step": step, "parameters": parameters, "inputs": inputs}
    if image:
        body["image"] = image
    if req.title:
        body["title"] = req.title
    if req.environment:
        body["environment"] = req.environment
    return body


def _prepare_notebook(req: RunRequest, path: str, image: str, max_bytes: int) -> PreparedRun:
    nb = read_notebook(path)
    params = notebook_parameters(nb)
    overrides = coerce_overrides(params, req.parameters)
    given = _checked_inputs(req.inputs)
    inputs = {**_checked_inputs(notebook_inputs(nb)), **given}
    root, entry = os.path.dirname(path), os.path.basename(path)
    step = {
        "name": _step_name(path),
        "image": image,
        "command": [],
        "source-path": entry,
        "parameters": _yaml_params(params),
        "inputs": _yaml_inputs(inputs),
    }
    return _generated(req, "notebook", root, entry, step, overrides, given, max_bytes)


def _prepare_script(
    req: RunRequest,
    kind: str,
    root: str,
    entry: str,
    source: str,
    image: str,
    max_bytes: int,
    extra: dict[str, bytes] | None = None,
) -> PreparedRun:
    params = _script_params(source, req.parameters)
    overrides = coerce_overrides(params, req.parameters)
    declared = prepare_calls([source]).inputs
    given = _checked_inputs(req.inputs)
    step = {
        "name": "cell" if kind == "cell" else _step_name(entry),
        "image": image,
        "command": [f"python {shlex.quote(entry)} {{parameters}}"],
        "parameters": _yaml_params(params),
        "inputs": _yaml_inputs({**_checked_inputs(uri_lists(declared or {})), **given}),
    }
    file_entry = None if extra else entry
    return _generated(req, kind, root, file_entry, step, overrides, given, max_bytes, extra)


def _prepare_step(
    req: RunRequest, path: str, default_image: str | None, max_bytes: int
) -> PreparedRun:
    with open(path, "rb") as fp:
        text = fp.read()
    config = parse_config(text, source=os.path.basename(path))
    if req.step:
        step = get_step(config, req.step)
    elif len(config.steps) == 1:
        step = next(iter(config.steps.values()))
    else:
        raise InvalidInput(
            f"{os.path.basename(path)} has {len(config.steps)} steps; say which to run.",
            hint=f"Pass --step, one of: {', '.join(sorted(config.steps)) or '(none)'}.",
        )
    params = {name: Param(name, p.type, p.default) for name, p in step.parameters.items()}
    overrides = coerce_overrides(params, req.parameters)
    resolve_parameters(step, overrides)  # required values, ranges, choices: refused here already
    given = _checked_inputs(req.inputs)
    resolve_inputs(step, given)
    image = req.image or ("" if step.image else default_image or DEFAULT_IMAGE)
    root, entry = os.path.dirname(path), os.path.basename(path)
    tarball = snapshot(root, entry, max_bytes)
    body = _body(req, step.name, overrides, given, image)
    nb = step.source_path if (step.source_path or "").endswith(".ipynb") else None
    return PreparedRun("step", root, tarball, entry, step.name, body, nb, text.decode("utf-8"))


def prepare_run(
    req: RunRequest, *, default_image: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> PreparedRun:
    """Check a run locally and pack it; ``default_image`` is the configured one (c.Valohai)."""
    image = req.image or default_image or DEFAULT_IMAGE
    cwd = os.path.abspath(os.path.expanduser(req.cwd or "."))
    if req.code is not None and req.path:
        raise InvalidInput("Give either a path or code to run, not both.")
    if req.code is not None:
        if not req.code.strip():
            raise InvalidInput("The cell has no code to run.", hint="Write code under %%valohai.")
        extra = {CELL_FILE: req.code.encode("utf-8")}
        return _prepare_script(req, "cell", cwd, CELL_FILE, req.code, image, max_bytes, extra)
    if not req.path:
        raise InvalidInput("Give a notebook, a .py file or a valohai.yaml to run.")
    path = os.path.normpath(os.path.join(cwd, os.path.expanduser(req.path)))
    if not os.path.isfile(path):
        raise InvalidInput(f"No file {req.path} (in {cwd}).", hint="Check the path; save it first.")
    if path.endswith(".ipynb"):
        return _prepare_notebook(req, path, image, max_bytes)
    if path.endswith(".py"):
        with open(path, encoding="utf-8", errors="replace") as fp:
            source = fp.read()
        root, entry = os.path.dirname(path), os.path.basename(path)
        return _prepare_script(req, "script", root, entry, source, image, max_bytes)
    if path.endswith(YAML_SUFFIXES):
        return _prepare_step(req, path, default_image, max_bytes)
    raise InvalidInput(
        f"Cannot run {req.path}.",
        hint="Run a .ipynb notebook, a .py script or a valohai.yaml step.",
    )


# --- on the master --------------------------------------------------------------------------


def _environment(envs: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    for env in envs:
        if ref in (env.get("id"), env.get("slug"), env.get("name")):
            return env
    known = ", ".join(sorted(str(e.get("slug")) for e in envs)) or "(none)"
    raise InvalidInput(
        f"Unknown environment {ref!r}.", hint=f"Known environments: {known}; see `%valohai list`."
    )


def submission(prepared: PreparedRun, project: str | None) -> calls.Op:
    """The master's side of a run as one operation: check, upload, create."""
    if project:
        found = yield from calls.get_project(project)
    else:
        found = yield from calls.ensure_project(DEFAULT_PROJECT)
    body = dict(prepared.body)
    if body.get("environment"):
        env = _environment((yield from calls.environments()), body["environment"])
        body["environment"] = env["id"]
    commit = yield from calls.import_package(
        found["id"], prepared.tarball, prepared.yaml_path, f"jupyter-valohai {prepared.kind}"
    )
    body.update(project=found["id"], commit=commit["identifier"])
    return (yield from calls.create_execution(body))


def submit_prepared(client: Client, prepared: PreparedRun, project: str | None = None) -> Any:
    """Upload a run ``prepare_run`` checked and queue it (for callers that check before they
    connect); return the execution."""
    return client._run(submission(prepared, project))


async def asubmit_prepared(
    client: AsyncClient, prepared: PreparedRun, project: str | None = None
) -> Any:
    """``submit_prepared`` for the async client."""
    return await client._run(submission(prepared, project))


def submit(
    client: Client,
    req: RunRequest,
    *,
    default_image: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Any]:
    """Check, upload and queue a run; return the execution (the master's JSON)."""
    prepared = prepare_run(req, default_image=default_image, max_bytes=max_bytes)
    return submit_prepared(client, prepared, req.project)  # type: ignore[no-any-return]


async def asubmit(
    client: AsyncClient,
    req: RunRequest,
    *,
    default_image: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Any]:
    """``submit`` for the async client; the local packing runs in a thread."""
    prepared = await asyncio.to_thread(
        prepare_run, req, default_image=default_image, max_bytes=max_bytes
    )
    return await asubmit_prepared(client, prepared, req.project)  # type: ignore[no-any-return]
