"""Code snapshots: a folder as a gzipped tarball, honouring ``.gitignore`` and ``.vhignore``.

Ignore files are read in every folder, with Git's rules (pathspec's ``GitIgnoreSpec``): patterns
are relative to the folder of the file, later and deeper patterns win, ``!`` re-includes. Version
control folders, notebook checkpoints, caches and virtualenvs are never included. The tarball is
reproducible (sorted names, zero times and owners), so the master stores an unchanged folder once.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pathspec

from .errors import InvalidInput, SnapshotTooLarge

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
IGNORE_FILES = (".gitignore", ".vhignore")
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".ipynb_checkpoints",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".venv",
        "venv",
        "node_modules",
        ".jupyter-valohai",
    }
)
SKIP_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class _Rules:
    base: str  # folder of the ignore files, relative to the root ("" for the root)
    spec: pathspec.GitIgnoreSpec


def _read_rules(folder: str, rel: str) -> _Rules | None:
    lines: list[str] = []
    for name in IGNORE_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as fp:
                lines.extend(fp.read().splitlines())
    return _Rules(rel, pathspec.GitIgnoreSpec.from_lines(lines)) if lines else None


def _ignored(rules: list[_Rules], rel: str, is_dir: bool) -> bool:
    verdict = False
    for rule in rules:
        sub = rel[len(rule.base) + 1 :] if rule.base else rel
        result = rule.spec.check_file(sub + "/" if is_dir else sub)
        if result.include is not None:
            verdict = result.include
    return verdict


def _is_venv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def iter_files(root: str) -> Iterator[tuple[str, str]]:
    """Yield ``(relative posix path, absolute path)`` of each file a snapshot of ``root`` holds."""
    root = os.path.realpath(root)

    def walk(folder: str, rel: str, rules: list[_Rules]) -> Iterator[tuple[str, str]]:
        own = _read_rules(folder, rel)
        rules = [*rules, own] if own else rules
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            real = os.path.realpath(entry.path)
            if real != root and not real.startswith(root + os.sep):
                continue  # a link that leaves the folder
            if entry.is_dir():
                if entry.is_symlink() or entry.name in SKIP_DIRS or _is_venv(entry.path):
                    continue  # linked folders are not followed: no loops, no surprises
                if not _ignored(rules, child, True):
                    yield from walk(entry.path, child, rules)
            elif (
                entry.is_file()
                and not entry.name.endswith(SKIP_SUFFIXES)
                and not _ignored(rules, child, False)
            ):
                yield child, entry.path

    yield from walk(root, "", [])


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _check_size(files: list[tuple[str, str, int]], extra: int, max_bytes: int) -> None:
    total = sum(size for _, _, size in files) + extra
    if total <= max_bytes:
        return
    biggest = sorted(files, key=lambda f: (-f[2], f[0]))[:5]
    named = ", ".join(f"{rel} ({_human(size)})" for rel, _, size in biggest)
    raise SnapshotTooLarge(
        f"The code snapshot is {_human(total)}, over the limit of {_human(max_bytes)}; "
        f"the biggest files: {named}.",
        hint="Add them to .vhignore (data belongs in inputs), or raise the size limit.",
    )


def _info(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def snapshot(
    root: str,
    entry: str | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    extra: Mapping[str, bytes] | None = None,
) -> bytes:
    """Return a tar.gz of ``root``: ``entry`` (relative to root, always included) and the files
    beside it that no ignore rule excludes, plus ``extra`` generated files (name -> bytes)."""
    if not os.path.isdir(root):
        raise InvalidInput(f"No folder {root}.", hint="Run from the folder of your code.")
    extra = dict(extra or {})
    files = {rel: path for rel, path in iter_files(root) if rel not in extra}
    if entry is not None:
        rel_entry = entry.replace(os.sep, "/")
        path = os.path.join(root, entry)
        if not os.path.isfile(path):
            raise InvalidInput(f"No file {entry} in {root}.", hint="Check the path and save it.")
        files.setdefault(rel_entry, path)
    sized = [(rel, path, os.stat(path).st_size) for rel, path in files.items()]
    _check_size(sized, sum(len(v) for v in extra.values()), max_bytes)

    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel, path, size in sorted(sized):
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            try:
                with open(path, "rb") as fp:
                    tar.addfile(_info(rel, size, mode), fp)
            except OSError as exc:
                raise InvalidInput(
                    f"Cannot read {rel} for the code snapshot: {exc.strerror or exc}.",
                    hint="Add it to .vhignore if the run does not need it.",
                ) from None
        for rel, data in sorted(extra.items()):
            tar.addfile(_info(rel, len(data)), io.BytesIO(data))
    return buf.getvalue()
