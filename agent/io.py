"""An execution's files on the agent: the directory layout, code and inputs in, outputs out.

``<work_dir>/<execution id>/`` holds ``repository/`` (the code archive, safely extracted),
``inputs/<name>/`` (downloaded input files), ``outputs/`` and ``config/`` (``parameters.json`` and
``inputs.json`` in valohai-utils' format). After the run, regular files under ``outputs/`` are
hashed, uploaded and registered; symlinks and anything resolving outside ``outputs/`` are refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from jupyter_valohai.archive import safe_extract
from jupyter_valohai.errors import InvalidInput

from .cache import InputFetcher
from .client import AgentClient

log = logging.getLogger(__name__)

Json = dict[str, Any]
SIDECAR_SUFFIX = ".metadata.json"
METADATA_JSONL = "valohai.metadata.jsonl"
#: Agent settings that must not reach user code.
PRIVATE_ENV = ("VH_AGENT_TOKEN", "VH_AGENT_WORK_DIR", "VH_MASTER_URL")
#: The agent's own credentials never reach an execution's environment (a step that needs one gets
#: it from its own environment variables): cloud SDK settings and anything named like a secret.
PRIVATE_ENV_PATTERN = re.compile(
    r"^(AWS_|AZURE_|GOOGLE_APPLICATION_CREDENTIALS|VH_.*TOKEN)|"
    r"(TOKEN|SECRET|PASSWORD|PASSWD|ACCESS_KEY|PRIVATE_KEY|CONNECTION_STRING|CREDENTIALS)",
    re.IGNORECASE,
)


def _private(name: str) -> bool:
    return name in PRIVATE_ENV or bool(PRIVATE_ENV_PATTERN.search(name))


def safe_name(name: str, fallback: str = "file") -> str:
    """Return ``name`` reduced to one harmless path component."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return fallback if name in ("", ".", "..") else name[:255]


@dataclass
class Layout:
    """The directories of one execution on this agent."""

    root: str

    @classmethod
    def create(cls, work_dir: str, execution_id: str) -> Layout:
        layout = cls(os.path.join(os.path.abspath(work_dir), safe_name(execution_id, "execution")))
        if os.path.exists(layout.root):  # left over from an earlier attempt on this machine
            shutil.rmtree(layout.root)
        for path in (layout.repository, layout.inputs, layout.outputs, layout.config):
            os.makedirs(path)
        return layout

    @property
    def repository(self) -> str:
        return os.path.join(self.root, "repository")

    @property
    def inputs(self) -> str:
        return os.path.join(self.root, "inputs")

    @property
    def outputs(self) -> str:
        return os.path.join(self.root, "outputs")

    @property
    def config(self) -> str:
        return os.path.join(self.root, "config")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def scrubbed_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The agent's environment (or ``base``) without the agent's own secrets."""
    return {k: v for k, v in (os.environ if base is None else base).items() if not _private(k)}


def execution_env(spec: Json, layout: Layout, base: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment of the execution's processes."""
    env = scrubbed_env(base)
    env.update({str(k): str(v) for k, v in (spec.get("environment_variables") or {}).items()})
    env.update(
        {
            "VH_JOB_ID": str(spec["id"]),
            "VH_EXECUTION_ID": str(spec["id"]),
            "VH_REPOSITORY_DIR": layout.repository,
            "VH_INPUTS_DIR": layout.inputs,
            "VH_OUTPUTS_DIR": layout.outputs,
            "VH_CONFIG_DIR": layout.config,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


# --- in: code, inputs, config ----------------------------------------------------------------


def fetch_code(
    client: AgentClient, spec: Json, layout: Layout, fetcher: InputFetcher | None = None
) -> None:
    """Download the code tarball and extract it (safely) into ``repository/``.

    The archive's SHA-256 (``code_sha256`` of the spec) names it in the worker's cache: an
    agent running the same commit again extracts its copy and does not download it again.
    """
    url = spec.get("code_url")
    if not url:
        return
    archive = os.path.join(layout.root, "code.tgz")
    sha256 = spec.get("code_sha256")
    try:
        if fetcher is not None and fetcher.cache is not None and sha256:
            fetcher.fetch(client, "Code: ", {"sha256": str(sha256)}, str(url), archive)
        else:
            client.download_code(str(url), archive)
        safe_extract(archive, layout.repository)
    finally:
        if os.path.exists(archive):
            os.unlink(archive)


def _file_name(entry: Json, url: str) -> str:
    if entry.get("name"):
        return safe_name(str(entry["name"]))
    return safe_name(unquote(urlsplit(url).path))


def _source_url(entry: Json) -> str:
    url = str(entry.get("url") or "")
    if url.startswith("datum://"):
        return f"/api/agent/data/{url[len('datum://') :]}/download"
    if not url and entry.get("datum_id"):
        return f"/api/agent/data/{entry['datum_id']}/download"
    if not url:
        raise InvalidInput(f"An input file has no URL: {entry!r}.")
    scheme = urlsplit(url).scheme
    if not url.startswith("/") and scheme not in ("http", "https"):
        raise InvalidInput(
            f"Input URL {url!r} has a scheme the agent does not download ({scheme!r}).",
            hint="The master should hand out http(s) URLs or master-relative ones.",
        )
    return url


def fetch_inputs(
    client: AgentClient, spec: Json, layout: Layout, fetcher: InputFetcher | None = None
) -> Json:
    """Download every input file; return the content of ``inputs.json``.

    With a ``fetcher`` (the agent always has one), files come through the worker's input cache
    and URLs outside the master only from addresses its guard allows (see agent/cache.py).
    """
    config: Json = {}
    for input_name, entries in (spec.get("inputs") or {}).items():
        directory = os.path.join(layout.inputs, safe_name(str(input_name), "input"))
        os.makedirs(directory, exist_ok=True)
        files: list[Json] = []
        taken: set[str] = set()
        for entry in entries or []:
            url = _source_url(entry)
            name = _file_name(entry, url)
            base, ext = os.path.splitext(name)
            n = 1
            while name in taken:
                name, n = f"{base}-{n}{ext}", n + 1
            taken.add(name)
            path = os.path.join(directory, name)
            if fetcher is not None:
                got = fetcher.fetch(client, f"Input {input_name!r}: ", entry, url, path)
                size, sha256 = got.size, got.sha256
                log.info("Input %r %r: %d bytes transferred", input_name, name, got.transferred)
            else:
                size, sha256 = client.download(url, path)
            if entry.get("sha256") and entry["sha256"] != sha256:
                raise InvalidInput(
                    f"Input {input_name!r} file {name!r} has SHA-256 {sha256}, "
                    f"expected {entry['sha256']}."
                )
            files.append(
                {
                    "name": name,
                    "path": path,
                    "uri": entry.get("uri") or entry.get("url"),
                    "size": size,
                    "checksums": {"sha256": sha256},
                    "datum_id": entry.get("datum_id"),
                }
            )
        config[str(input_name)] = {"files": files}
    return config


def write_config(spec: Json, layout: Layout, inputs: Json) -> None:
    """Write ``config/parameters.json`` and ``config/inputs.json`` for valohai-utils."""
    with open(os.path.join(layout.config, "parameters.json"), "w") as f:
        json.dump(spec.get("parameters") or {}, f, indent=2)
    with open(os.path.join(layout.config, "inputs.json"), "w") as f:
        json.dump(inputs, f, indent=2)


# --- out: outputs ------------------------------------------------------------------------------


@dataclass
class OutputFile:
    name: str  # relative to outputs/, with "/" separators
    path: str
    size: int = 0
    sha256: str = ""
    metadata: Json = field(default_factory=dict)


def _read_json(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        log.warning("Ignoring unreadable metadata file %s: %s", path, exc)
        return None


def _hash_regular(path: str) -> tuple[int, str] | None:
    """Size and SHA-256 of ``path`` if it is a regular file (opened without following links)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        # No following links, and no blocking on a FIFO swapped in after the check.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        digest, size = hashlib.sha256(), 0
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def collect_outputs(outputs_dir: str) -> list[OutputFile]:
    """Return the regular files under ``outputs_dir`` with size, SHA-256 and sidecar metadata."""
    root = os.path.realpath(outputs_dir)
    found: dict[str, OutputFile] = {}
    sidecars: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            path = os.path.join(dirpath, filename)
            name = os.path.relpath(path, root).replace(os.sep, "/")
            real = os.path.realpath(path)
            if os.path.islink(path) or os.path.commonpath([root, real]) != root:
                log.warning("Not uploading output %r: it is a link", name)
                continue
            if name.endswith(SIDECAR_SUFFIX):
                sidecars[name[: -len(SIDECAR_SUFFIX)]] = path
                continue
            if name == METADATA_JSONL:
                continue
            hashed = _hash_regular(path)
            if hashed is None:
                log.warning("Not uploading output %r: not a regular file", name)
                continue
            found[name] = OutputFile(name, path, *hashed)
    for target, path in sidecars.items():
        data = _read_json(path)
        if target in found and isinstance(data, dict):
            found[target].metadata.update(data)
    jsonl = os.path.join(root, METADATA_JSONL)
    if os.path.isfile(jsonl) and not os.path.islink(jsonl):
        with open(jsonl, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(entry, dict) or not isinstance(entry.get("metadata"), dict):
                    continue
                target = str(entry.get("file", "")).lstrip("/")
                if target in found:
                    found[target].metadata.update(entry["metadata"])
    return list(found.values())


def upload_outputs(
    client: AgentClient, execution_id: str, attempt: int, files: list[OutputFile]
) -> list[Json]:
    """Prepare, upload and register ``files``; return the datums the master made."""
    if not files:
        return []
    uploads = client.prepare_outputs(
        execution_id, attempt, [{"name": f.name, "size": f.size} for f in files]
    )
    by_name = {f.name: f for f in files}
    parts: dict[str, list[Json]] = {}
    for upload in uploads:
        output = by_name.get(upload.get("name", ""))
        if output is None:
            continue
        if "multipart" in upload:  # a large file going straight to the store, part by part
            parts[output.name] = _put_parts(client, upload["multipart"], output.path)
            continue
        answer = client.put(upload, output.path)
        if answer.get("sha256") and answer["sha256"] != output.sha256:
            log.warning(
                "Upload of %r: master saw SHA-256 %s, we sent %s",
                output.name,
                answer["sha256"],
                output.sha256,
            )
    return client.register_outputs(
        execution_id,
        attempt,
        [
            {"name": f.name, "size": f.size, "sha256": f.sha256, "metadata": f.metadata}
            | ({"parts": parts[f.name]} if f.name in parts else {})
            for f in files
        ],
    )


#: Parts of one multipart upload in flight at once (boto3's TransferManager sends 10).
PART_CONCURRENCY = 4


def _put_parts(client: AgentClient, multipart: Json, path: str) -> list[Json]:
    """PUT the parts (byte ranges of ``path``) to their signed URLs, a few at a time; return
    their numbers and ETags in order."""

    def put(part: Json) -> Json:
        with open(path, "rb") as f:
            f.seek(int(part["offset"]))
            data = f.read(int(part["size"]))
        resp = client.request(
            part.get("method", "PUT"),
            part["url"],
            data=data,
            headers=dict(part.get("headers") or {}),
            timeout=max(client.timeout, 300),
        )
        return {"number": part["number"], "etag": resp.headers.get("ETag", "")}

    parts = list(multipart.get("parts", []))
    with ThreadPoolExecutor(max(1, min(PART_CONCURRENCY, len(parts)))) as pool:
        return list(pool.map(put, parts))
