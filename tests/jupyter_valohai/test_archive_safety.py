"""``archive.safe_extract`` against a hostile corpus: every bad archive is refused whole."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jupyter_valohai.archive import read_member, safe_extract
from jupyter_valohai.errors import UnsafeArchive


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _device(name: str, kind: bytes = tarfile.CHRTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def _pax_path(shown: str, real: str) -> tuple[tarfile.TarInfo, bytes]:
    """A member whose ustar name looks harmless while its PAX ``path`` record says otherwise."""
    info, data = _file(shown)
    info.pax_headers = {"path": real}
    return info, data


Members = list[tuple[tarfile.TarInfo, bytes | None]]


def _write_tar(path: Path, members: Members, fmt: int = tarfile.PAX_FORMAT) -> None:
    with tarfile.open(path, "w:gz", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


@dataclass(frozen=True)
class Case:
    members: Members
    fmt: int = tarfile.PAX_FORMAT
    limits: dict[str, int] = field(default_factory=dict)  # max_members / max_bytes


DEEP = "deep/" + "a/" * 60


# Each entry starts with a harmless file, so "nothing written" also proves all-or-nothing.
HOSTILE: dict[str, Case] = {
    "absolute-path": Case([_file("ok.txt"), _file("/tmp/vh-absolute-escape.txt")]),
    "dotdot": Case([_file("ok.txt"), _file("../escape.txt")]),
    "dotdot-nested": Case([_file("ok.txt"), _file("a/b/../../../escape.txt")]),
    "dot-then-dotdot": Case([_file("ok.txt"), _file("./../escape.txt")]),
    "directory-dotdot": Case([_file("ok.txt"), _dir("../evil-dir")]),
    "pax-path-dotdot": Case([_file("ok.txt"), _pax_path("innocent.txt", "../escape.txt")]),
    "gnu-longname-dotdot": Case(
        [_file("ok.txt"), _file("../" + "x" * 150 + ".txt")], fmt=tarfile.GNU_FORMAT
    ),
    "symlink-outside": Case([_file("ok.txt"), _link("evil", "../outside", tarfile.SYMTYPE)]),
    "symlink-absolute": Case([_file("ok.txt"), _link("evil", "/etc/passwd", tarfile.SYMTYPE)]),
    "symlink-deep-dotdot": Case(
        [_file("ok.txt"), _link(DEEP + "lnk", "../" * 62 + "outside", tarfile.SYMTYPE)],
        fmt=tarfile.GNU_FORMAT,
    ),
    "symlink-then-write-through": Case(
        [_file("ok.txt"), _link("dir", "..", tarfile.SYMTYPE), _file("dir/escape.txt")]
    ),
    # Links that look safe against the empty directory but escape once an earlier link exists.
    "symlink-chain-dotdot": Case(
        [
            _file("ok.txt"),
            _link("sub/x", "..", tarfile.SYMTYPE),
            _link("sub/x/y", "..", tarfile.SYMTYPE),
            _file("sub/x/y/escape.txt"),
        ]
    ),
    "symlink-to-dot-then-dotdot": Case(
        [_file("ok.txt"), _link("a", ".", tarfile.SYMTYPE), _link("a/b", "..", tarfile.SYMTYPE)]
    ),
    "symlink-through-symlink-dir": Case(
        [
            _file("ok.txt"),
            _dir("sub"),
            _link("d", "sub", tarfile.SYMTYPE),
            _link("d2", "d/../..", tarfile.SYMTYPE),
        ]
    ),
    "symlink-loop": Case(
        [
            _file("ok.txt"),
            _link("a", "b", tarfile.SYMTYPE),
            _link("b", "a", tarfile.SYMTYPE),
            _file("a/escape.txt"),
        ]
    ),
    "symlink-replaced-by-file": Case(
        [_file("ok.txt"), _link("lnk", "ok.txt", tarfile.SYMTYPE), _file("lnk", b"overwrite")]
    ),
    "hardlink-outside": Case([_file("ok.txt"), _link("hard", "../outside", tarfile.LNKTYPE)]),
    "hardlink-absolute": Case([_file("ok.txt"), _link("hard", "/etc/passwd", tarfile.LNKTYPE)]),
    "hardlink-nested-dotdot": Case(
        [_file("ok.txt"), _link("hard", "a/b/../../../outside", tarfile.LNKTYPE)]
    ),
    "hardlink-through-symlink": Case(
        [
            _file("ok.txt"),
            _link("s", ".", tarfile.SYMTYPE),
            _link("hard", "s/../outside", tarfile.LNKTYPE),
        ]
    ),
    "char-device": Case([_file("ok.txt"), _device("null")]),
    "block-device": Case([_file("ok.txt"), _device("disk", tarfile.BLKTYPE)]),
    "fifo": Case([_file("ok.txt"), _device("pipe", tarfile.FIFOTYPE)]),
    "too-many-members": Case([_file(f"f{i}.txt") for i in range(50)], limits={"max_members": 10}),
    "tar-bomb": Case(
        [_file("ok.txt"), _file("zeros.bin", b"\0" * (1 << 20))], limits={"max_bytes": 64 << 10}
    ),
}


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(sandbox, dest, archive): dest is inside sandbox, so escapes land next to it."""
    sandbox = tmp_path / "sandbox"
    dest = sandbox / "dest"
    sandbox.mkdir()
    (tmp_path / "outside").write_text("secret")
    return sandbox, dest, tmp_path / "code.tgz"


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


CASES = sorted(HOSTILE)


@pytest.mark.parametrize("case", CASES)
def test_hostile_archive_is_refused_and_nothing_written(
    case: str, layout: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, dest, archive = layout
    hostile = HOSTILE[case]
    _write_tar(archive, hostile.members, hostile.fmt)
    before = _tree(tmp_path)
    with pytest.raises(UnsafeArchive) as info:
        safe_extract(str(archive), str(dest), **hostile.limits)
    assert info.value.status == 400
    assert info.value.hint
    assert list(dest.iterdir()) == []
    assert _tree(tmp_path) - before <= {"sandbox/dest"}
    assert (tmp_path / "outside").read_text() == "secret"
    assert not os.path.exists("/tmp/vh-absolute-escape.txt")


@pytest.mark.parametrize("case", CASES)
def test_read_member_refuses_hostile_archive(case: str, layout: tuple[Path, Path, Path]) -> None:
    _, _, archive = layout
    hostile = HOSTILE[case]
    _write_tar(archive, hostile.members, hostile.fmt)
    with pytest.raises(UnsafeArchive):
        read_member(str(archive), "ok.txt", **hostile.limits)


def test_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 20


def test_absolute_path_stays_inside(layout: tuple[Path, Path, Path], tmp_path: Path) -> None:
    sandbox, dest, archive = layout
    target = tmp_path / "abs-escape.txt"
    _write_tar(archive, [_file(str(target), b"planted")])
    with contextlib.suppress(UnsafeArchive):  # refusing is the documented behaviour
        safe_extract(str(archive), str(dest))
    assert not target.exists()
    assert not [p for p in sandbox.rglob("*") if not p.is_relative_to(dest)]


def test_tar_bomb_size_bound(layout: tuple[Path, Path, Path]) -> None:
    _, dest, archive = layout
    # Highly compressible: 4 MiB of zeros is a few KiB on disk.
    _write_tar(archive, [_file("a.bin", b"\0" * (2 << 20)), _file("b.bin", b"\0" * (2 << 20))])
    assert archive.stat().st_size < 64 * 1024
    with pytest.raises(UnsafeArchive, match="unpacks to more than"):
        safe_extract(str(archive), str(dest), max_bytes=3 << 20)
    assert list(dest.iterdir()) == []


def test_member_count_bound(layout: tuple[Path, Path, Path]) -> None:
    _, dest, archive = layout
    _write_tar(archive, [_file(f"f{i}.txt") for i in range(20)])
    with pytest.raises(UnsafeArchive, match="more than 10 entries"):
        safe_extract(str(archive), str(dest), max_members=10)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.write_bytes(b"this is not a tarball at all" * 10),
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 40),  # broken gzip
    ],
    ids=["text", "empty", "broken-gzip"],
)
def test_not_a_tarball(make: Callable[[Path], object], layout: tuple[Path, Path, Path]) -> None:
    _, dest, archive = layout
    make(archive)
    with pytest.raises(UnsafeArchive, match="not a readable tarball"):
        safe_extract(str(archive), str(dest))


def test_truncated_tarball(layout: tuple[Path, Path, Path]) -> None:
    _, dest, archive = layout
    _write_tar(archive, [_file("big.bin", os.urandom(64 * 1024))])
    archive.write_bytes(archive.read_bytes()[:2000])
    with pytest.raises(UnsafeArchive):
        safe_extract(str(archive), str(dest))


def test_safe_archive_extracts(layout: tuple[Path, Path, Path]) -> None:
    _, dest, archive = layout
    _write_tar(
        archive,
        [
            _file("valohai.yaml", b"- step: {}\n"),
            _file("src/train.py", b"print('hi')\n"),
            _link("src/link.py", "train.py", tarfile.SYMTYPE),
            _link("copy.py", "src/train.py", tarfile.LNKTYPE),
            # Links through links that stay inside are fine.
            _link("lib", "src", tarfile.SYMTYPE),
            _link("via.py", "lib/../src/train.py", tarfile.SYMTYPE),
        ],
    )
    safe_extract(str(archive), str(dest))
    assert (dest / "src" / "train.py").read_bytes() == b"print('hi')\n"
    assert (dest / "src" / "link.py").read_bytes() == b"print('hi')\n"
    assert (dest / "copy.py").read_bytes() == b"print('hi')\n"
    assert (dest / "via.py").read_bytes() == b"print('hi')\n"
    assert read_member(str(archive), "valohai.yaml") == b"- step: {}\n"
    assert read_member(str(archive), "./src/train.py") == b"print('hi')\n"
    assert read_member(str(archive), "missing.txt") is None
