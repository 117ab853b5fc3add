"""Code archives: validating and safely extracting the tarballs of commits and snapshots.

Safety comes from the standard library's ``tarfile.data_filter`` (PEP 706), which refuses absolute
paths, ``..`` components, links that point outside the destination, and device files. On top of it
we bound the member count and the unpacked size, so a tar bomb is refused before it fills the disk,
and we resolve every path through the archive's own symlinks before anything is written: the filter
checks each member against the disk as it is when that member is written, so a chain such as
``a -> .`` then ``a/b -> ..`` passes the first look at an empty directory and is only caught halfway
through extraction. Resolving links within the archive refuses such archives whole.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import UnsafeArchive

MAX_MEMBERS = 100_000
MAX_UNPACKED_BYTES = 2 * 1024**3
MAX_LINK_DEPTH = 40  # as the kernel's MAXSYMLINKS
LINK_HINT = (
    "Archives may not hold absolute paths, '..', links leaving the directory, files written "
    "through links, or device files."
)


@contextmanager
def _open(path: str) -> Iterator[tarfile.TarFile]:
    try:
        with tarfile.open(path, mode="r:*") as tar:
            yield tar
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, UnsafeArchive):
            raise
        raise UnsafeArchive(
            f"The code archive is not a readable tarball ({exc}).",
            hint="Upload a gzipped tar file, as `vh exec run --adhoc` or `tar czf` makes.",
        ) from exc


def _checked_members(
    tar: tarfile.TarFile, dest: str, max_members: int, max_bytes: int
) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:
        if len(members) >= max_members:
            raise UnsafeArchive(
                f"The code archive has more than {max_members} entries.",
                hint="Leave data files out of the code package (use inputs for data).",
            )
        if member.name.startswith("/") or (member.islnk() and member.linkname.startswith("/")):
            # data_filter would strip the slash and extract inside dest; we refuse such archives.
            shown = member.name if member.name.startswith("/") else member.linkname
            raise UnsafeArchive(
                f"The code archive has an absolute path {shown!r}.",
                hint="Archives may not hold absolute paths; make them relative to the project.",
            )
        try:
            filtered = tarfile.data_filter(member, dest)
        except tarfile.FilterError as exc:
            raise UnsafeArchive(
                f"The code archive has an unsafe entry {member.name!r}: {exc}.",
                hint=LINK_HINT,
            ) from exc
        if filtered is None:
            continue
        total += max(filtered.size, 0)
        if total > max_bytes:
            raise UnsafeArchive(
                f"The code archive unpacks to more than {max_bytes} bytes.",
                hint="Leave data files out of the code package (use inputs for data).",
            )
        members.append(filtered)
    _check_links(members)
    return members


def _resolve(path: str, links: dict[str, str], depth: int = 0) -> list[str] | None:
    """Resolve ``path`` (relative to the root) through the archive's symlinks; None if it leaves."""
    if depth > MAX_LINK_DEPTH:
        raise UnsafeArchive(f"The code archive has a symlink loop at {path!r}.", hint=LINK_HINT)
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(comp)
        target = links.get("/".join(parts))
        if target is not None:
            if target.startswith("/"):
                return None
            resolved = _resolve("/".join([*parts[:-1], target]), links, depth + 1)
            if resolved is None:
                return None
            parts = resolved
    return parts


def _check_links(members: list[tarfile.TarInfo]) -> None:
    """Refuse members that reach outside the root through the archive's own symlinks."""
    names = [posixpath.normpath(m.name) for m in members]
    links = {n: m.linkname for n, m in zip(names, members, strict=True) if m.issym()}
    if not links:
        return
    seen: set[str] = set()
    for name, member in zip(names, members, strict=True):
        if name in seen and name in links:
            raise UnsafeArchive(
                f"The code archive holds {member.name!r} twice, once as a link.", hint=LINK_HINT
            )
        seen.add(name)
        parent = posixpath.dirname(name)
        if member.issym():
            checks = [parent, posixpath.join(parent, member.linkname)]
        elif member.islnk():
            checks = [parent, member.linkname]
        else:
            checks = [name]
        for path in checks:
            if _resolve(path, links) is None:
                raise UnsafeArchive(
                    f"The code archive has an unsafe entry {member.name!r}: through the "
                    "archive's symlinks it reaches outside the directory.",
                    hint=LINK_HINT,
                )


def read_member(
    path: str, name: str, *, max_members: int = MAX_MEMBERS, max_bytes: int = MAX_UNPACKED_BYTES
) -> bytes | None:
    """Check a whole archive for safety; return the bytes of one regular file in it, if any."""
    wanted = os.path.normpath(name)
    with _open(path) as tar:
        members = _checked_members(tar, "/nonexistent-dest", max_members, max_bytes)
        for member in members:
            if member.isfile() and os.path.normpath(member.name) == wanted:
                fp = tar.extractfile(member)
                return fp.read() if fp else None
    return None


def safe_extract(
    path: str, dest: str, *, max_members: int = MAX_MEMBERS, max_bytes: int = MAX_UNPACKED_BYTES
) -> None:
    """Extract a tarball into ``dest``; refuse it whole, before writing, if any member is unsafe."""
    os.makedirs(dest, exist_ok=True)
    dest = os.path.realpath(dest)
    with _open(path) as tar:
        members = _checked_members(tar, dest, max_members, max_bytes)
    # A second pass writes; the filter runs again on each member as it is extracted.
    with _open(path) as tar:
        try:
            tar.extractall(dest, members=_by_name(tar, members), filter="data")
        except tarfile.FilterError as exc:  # pragma: no cover - caught by the first pass
            raise UnsafeArchive(f"The code archive has an unsafe entry: {exc}.") from exc


def _by_name(tar: tarfile.TarFile, wanted: list[tarfile.TarInfo]) -> Iterator[tarfile.TarInfo]:
    names = {m.name for m in wanted}
    for member in tar:
        if member.name in names:
            yield member
