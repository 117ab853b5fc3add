"""Child processes that must not outlive the thread (and so the process) that started them."""

from __future__ import annotations

import contextlib
import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child, as ``preexec_fn``
    """Best effort (Linux): SIGKILL this child when the thread that started it ends.

    The thread matters: start such children from a thread that lives as long as its process
    (the main thread, or a pool thread such as asyncio's default executor's).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
