"""What a notebook declares: parameters (papermill's ``parameters`` cell) and inputs.

Parameters come from the first cell tagged ``parameters``: each top-level assignment of a literal
(``epochs = 10``, ``lr: float = 0.1``) is one parameter, its valohai.yaml type inferred from the
value: ``bool`` -> flag, ``int`` -> integer, ``float`` -> float, ``str`` -> string. Values that are
no scalar (lists, dicts, ``None``) are not parameters: papermill leaves them as written, and
valohai.yaml has no type for them. Parameters given to ``valohai.prepare(default_parameters=...)``
anywhere in the notebook count too (the parameters cell wins on a clash).

Inputs come from cells tagged ``inputs`` (a dict literal ``{"name": uri-or-list}``, or assignments
``name = "uri"`` / ``name = ["uri", ...]`` / ``inputs = {...}``) and from
``valohai.prepare(default_inputs=...)`` calls (valohai-utils' own parser reads those).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import nbformat
from valohai.internals.parsing import PrepareParser

from .errors import InvalidInput

PARAMETER_TYPES = ("integer", "float", "string", "flag")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


@dataclass(frozen=True)
class Param:
    """One parameter: its name, valohai.yaml type and default value."""

    name: str
    type: str
    default: Any


def read_notebook(path: str) -> nbformat.NotebookNode:
    """Read a notebook file (any nbformat 4 minor), or raise InvalidInput naming it."""
    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise InvalidInput(
            f"No notebook {path}.", hint="Save the notebook first, or give its path."
        ) from None
    except Exception as exc:  # nbformat raises JSON, validation and OS errors alike
        raise InvalidInput(
            f"{path} is not a readable notebook: {exc}.", hint="Open and save it in JupyterLab."
        ) from None


def infer_type(value: Any) -> str | None:
    """Return the valohai.yaml parameter type of a Python value, or None (not a parameter)."""
    if isinstance(value, bool):
        return "flag"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float" if math.isfinite(value) else None
    if isinstance(value, str):
        return "string"
    return None


def infer_text_type(text: str) -> tuple[str, Any]:
    """Type a value given as text (``--param lr=0.1`` on a script): integer, float, flag, string."""
    for kind, convert in (("integer", int), ("float", float)):
        try:
            value = convert(text)
        except ValueError:
            continue
        if kind == "float" and not math.isfinite(value):
            break
        return kind, value
    if text.strip().lower() in ("true", "false"):
        return "flag", text.strip().lower() == "true"
    return "string", text


def python_source(source: str) -> str:
    """Turn IPython cell syntax (``%magic``, ``!shell``) into plain Python for ``ast``."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return str(TransformerManager().transform_cell(source))
    except Exception:  # a cell IPython itself cannot read: leave it for ast to refuse
        return source


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(python_source(source))
    except (SyntaxError, ValueError):
        return None


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)  # raw JSON has lists


def _cells(nb: Any, tag: str | None = None) -> list[str]:
    return [
        _source(cell)
        for cell in nb.get("cells", [])
        if cell.get("cell_type") == "code"
        and (tag is None or tag in (cell.get("metadata", {}).get("tags") or []))
    ]


def _assignments(tree: ast.Module) -> list[tuple[str | None, Any]]:
    """Top-level literal assignments in order: (name, value); a bare literal gives (None, value)."""
    found: list[tuple[str | None, Any]] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Expr):
            target, value = None, node.value
        else:
            continue
        if target is not None and not isinstance(target, ast.Name):
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        found.append((target.id if isinstance(target, ast.Name) else None, literal))
    return found


def prepare_calls(sources: Iterable[str]) -> PrepareParser:
    """valohai-utils' parser of ``valohai.prepare()`` calls, run over each source that parses."""
    parser = PrepareParser()
    for source in sources:
        tree = _parse(source)
        if tree is None:
            continue
        try:
            parser.visit(tree)
        except (NotImplementedError, ValueError, SyntaxError):
            continue  # e.g. prepare(default_inputs=compute()): nothing literal to read
    return parser


def params_from_values(values: Mapping[str, Any]) -> dict[str, Param]:
    """Parameters for the scalar values of ``values`` (others are left out)."""
    params: dict[str, Param] = {}
    for name, value in values.items():
        kind = infer_type(value)
        if kind and isinstance(name, str) and name.isidentifier():
            params[name] = Param(name, kind, value)
    return params


def notebook_parameters(nb: Any) -> dict[str, Param]:
    """Return the notebook's parameters, typed from their values (see the module's docstring)."""
    values: dict[str, Any] = {}
    prepared = prepare_calls(_cells(nb)).parameters
    if isinstance(prepared, dict):
        values.update(prepared)
    cells = _cells(nb, "parameters")
    tree = _parse(cells[0]) if cells else None
    if cells and tree is None:
        raise InvalidInput(
            "The notebook's parameters cell is not valid Python.",
            hint="Fix the cell tagged 'parameters' (assignments like `epochs = 10`).",
        )
    for name, value in _assignments(tree) if tree else []:
        if name:
            values.pop(name, None)  # the cell's order wins over prepare()'s
            values[name] = value
    return params_from_values(values)


def _coerce_text(param: Param, text: str) -> Any:
    if param.type == "integer":
        return int(text.strip())
    if param.type == "float":
        value = float(text.strip())
        if not math.isfinite(value):
            raise ValueError(text)
        return value
    if param.type == "flag":
        word = text.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError(text)
    return text


def _coerce_value(param: Param, value: Any) -> Any:
    if isinstance(value, str):
        return _coerce_text(param, value)
    if param.type == "flag" and isinstance(value, bool):
        return value
    if param.type == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if param.type == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if param.type == "float" and number:
        return float(value)
    if param.type == "string" and number:
        return str(value)  # a form that sent 5 for a text field means "5"
    raise ValueError(value)


TYPE_WORDS = {
    "integer": "an integer",
    "float": "a number",
    "flag": "true or false",
    "string": "text",
}


def coerce_overrides(params: Mapping[str, Param], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Check and convert overrides (text like "0.1", or typed values) to the parameters' types."""
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        known = ", ".join(params) or "(none: tag a cell 'parameters')"
        raise InvalidInput(
            f"Unknown parameter(s): {', '.join(unknown)}.", hint=f"The parameters are: {known}."
        )
    values: dict[str, Any] = {}
    for name, value in overrides.items():
        param = params[name]
        try:
            values[name] = _coerce_value(param, value)
        except (ValueError, TypeError):
            expected = TYPE_WORDS.get(param.type, param.type)
            raise InvalidInput(
                f"Parameter {name!r} must be {expected} ({param.type}), not {value!r}.",
                hint=f"Its default is {param.default!r}; e.g. --param {name}={param.default}.",
            ) from None
    return values


def _uris(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if value is None:
        return []
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def uri_lists(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Inputs (name -> URIs) from a mapping of URIs or lists of URIs; other values are skipped."""
    found: dict[str, list[str]] = {}
    _add_inputs(found, values.items())
    return found


def _add_inputs(found: dict[str, list[str]], pairs: Iterable[tuple[Any, Any]]) -> None:
    for name, value in pairs:
        uris = _uris(value)
        if isinstance(name, str) and name and uris is not None:
            found[name] = uris


def notebook_inputs(nb: Any) -> dict[str, list[str]]:
    """Return the notebook's inputs (name -> URIs) from ``inputs`` cells and valohai.prepare()."""
    found: dict[str, list[str]] = {}
    prepared = prepare_calls(_cells(nb)).inputs
    if isinstance(prepared, dict):
        _add_inputs(found, prepared.items())
    for source in _cells(nb, "inputs"):
        tree = _parse(source)
        if tree is None:
            raise InvalidInput(
                "The notebook's inputs cell is not valid Python.",
                hint="Write it as a dict literal {'name': 'uri' or ['uri', ...]}.",
            )
        for name, value in _assignments(tree):
            if isinstance(value, dict):
                _add_inputs(found, value.items())
            else:
                _add_inputs(found, [(name, value)])
    return found
