"""The kernel's live execution widget: :class:`ExecutionView` (ipywidgets + bqplot).

``state`` (the pure event reducer) and ``local`` (where downloads go) import no widget library;
``ExecutionView`` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .view import ExecutionView

__all__ = ["ExecutionView"]


def __getattr__(name: str) -> Any:
    if name == "ExecutionView":
        from .view import ExecutionView

        return ExecutionView
    raise AttributeError(name)
