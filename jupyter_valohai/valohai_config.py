"""valohai.yaml handling on ``valohai-yaml``: steps, typed parameters, inputs and commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import valohai_yaml
from valohai_yaml.excs import ValidationErrors
from valohai_yaml.objs import Config, Step

from .errors import InvalidInput

NOTEBOOK_SUFFIX = ".ipynb"


def parse_config(text: str | bytes, source: str = "valohai.yaml") -> Config:
    """Parse and validate a valohai.yaml document; bad YAML becomes :class:`InvalidInput`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{source} is not UTF-8 text.") from exc
    try:
        return valohai_yaml.parse(text)
    except ValidationErrors as exc:
        messages = "; ".join(str(err.message) for err in exc.errors[:5])
        raise InvalidInput(
            f"{source} is not valid: {messages}",
            hint="Run `vh lint` (valohai-cli) or `valohai-yaml lint` on it for every error.",
        ) from exc
    except Exception as exc:  # yaml.YAMLError and friends carry a line number in their text
        raise InvalidInput(
            f"{source} could not be read: {exc}",
            hint="Check the YAML syntax; the file must be a list of `- step:` items.",
        ) from exc


def get_step(config: Config, name: str) -> Step:
    """Return the step called ``name``, or an error that lists the steps there are."""
    try:
        return config.steps[name]
    except KeyError:
        known = ", ".join(sorted(config.steps)) or "(none)"
        raise InvalidInput(
            f"The step {name!r} is not defined in valohai.yaml.", hint=f"Known steps: {known}."
        ) from None


def resolve_parameters(step: Step, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the step's parameter values: defaults, then overrides, each checked by type."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(step.parameters))
    if unknown:
        raise InvalidInput(
            f"Unknown parameter(s) for step {step.name!r}: {', '.join(unknown)}.",
            hint=f"The step takes: {', '.join(step.parameters) or '(no parameters)'}.",
        )
    values: dict[str, Any] = {}
    for name, param in step.parameters.items():
        value = overrides.get(name, param.default)
        if value is None:
            if param.optional or param.type == "flag":
                continue
            raise InvalidInput(
                f"The parameter {name!r} of step {step.name!r} needs a value.",
                hint=f"Pass it, e.g. --{name}=VALUE.",
            )
        if param.type == "flag" and isinstance(value, str):
            value = value.strip().lower() in ("1", "true", "yes", "on")
        if param.type in ("integer", "float") and isinstance(value, bool):
            value = str(value)  # bool is an int in Python; let the type check refuse it
        try:
            values[name] = param.validate(value)
        except (ValidationErrors, ValueError, TypeError) as exc:
            detail = "; ".join(str(e) for e in getattr(exc, "errors", [exc]))
            raise InvalidInput(
                f"Bad value {value!r} for parameter {name!r} ({param.type}): {detail}.",
                hint=f"Give {name!r} a value of type {param.type}.",
            ) from exc
    return values


def resolve_inputs(step: Step, overrides: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Return each input's list of URIs: the override if given, else the step's default."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(step.inputs))
    if unknown:
        raise InvalidInput(
            f"Unknown input(s) for step {step.name!r}: {', '.join(unknown)}.",
            hint=f"The step takes: {', '.join(step.inputs) or '(no inputs)'}.",
        )
    resolved: dict[str, list[str]] = {}
    for name, inp in step.inputs.items():
        value = overrides.get(name, inp.default)
        uris = [value] if isinstance(value, str) else list(value or [])
        if not all(isinstance(u, str) and u.strip() for u in uris):
            raise InvalidInput(
                f"Input {name!r} must be a URI or a list of URIs.",
                hint="e.g. https://host/data.csv or datum://<id>.",
            )
        if not uris and not inp.optional:
            raise InvalidInput(
                f"The input {name!r} of step {step.name!r} needs a URI.",
                hint=f"Pass it, e.g. --{name}=https://host/file.",
            )
        resolved[name] = [u.strip() for u in uris]
    return resolved


def resolve_environment_variables(
    step: Step, overrides: Mapping[str, Any] | None
) -> dict[str, str]:
    """Return the step's environment variables with overrides applied, all as strings."""
    env = {
        name: str(var.default)
        for name, var in step.environment_variables.items()
        if var.default is not None
    }
    for key, value in dict(overrides or {}).items():
        if not isinstance(key, str) or not key or "=" in key or "\x00" in key:
            raise InvalidInput(f"Invalid environment variable name {key!r}.")
        env[key] = "" if value is None else str(value)
    return env


def notebook_path(step: Step) -> str | None:
    """Return the notebook a step runs with papermill (its ``source-path`` ends in .ipynb)."""
    source = step.source_path or ""
    return source if source.endswith(NOTEBOOK_SUFFIX) else None


def build_commands(step: Step, parameters: Mapping[str, Any]) -> list[str]:
    """Return the step's command lines with ``{parameters}`` and ``{parameter:x}`` interpolated."""
    return [str(line) for line in step.build_command(dict(parameters))]
