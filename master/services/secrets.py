"""Project environment variables, some of them secret, and the masking of secrets in logs.

A project's variables live in its document (``variables.<NAME>``); a secret one holds only its
value encrypted with Fernet (a master key: ``MasterConfig.secret_key`` or ``VH_SECRET_KEY``, else a
key file made once in ``<data dir>/secrets/variables.key``). No answer of the API holds a secret
value. Creating an execution snapshots the project's variables: plain ones join its
``environment_variables``; secret ones are sealed into the execution (``sealed_secrets``) and
opened only for the claim spec of the agent that runs it.

Every log event, metadata entry and status message of an execution passes :class:`Masker`, which
replaces each secret value by ``***``. The agent cuts long output into pieces, so a secret can
arrive split across two events of a stream: :meth:`Masker.stream` holds back the end of an event
when it could be the start of a secret and puts it before the next event of that stream (the
held text is kept, sealed, in the execution: ``mask_carry``).
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from jupyter_valohai.errors import InvalidInput, NotFound
from jupyter_valohai.models import isoformat, utcnow

from ..context import Context
from ..store import Doc, as_dt

MASK = "***"
MIN_SECRET = 4  # shorter values would mask ordinary text everywhere
MAX_VALUE = 64 * 1024
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
CARRY_STREAMS = ("stdout", "stderr")
CACHE_SIZE = 2048


class Masker:
    """Replaces the secret values of one execution in text."""

    def __init__(self, values: Iterable[str]) -> None:
        forms = set()
        for value in values:
            if len(value) >= MIN_SECRET:
                # Also as a JSON string spells it (a metrics line printed with json.dumps).
                forms |= {
                    value,
                    json.dumps(value)[1:-1],
                    json.dumps(value, ensure_ascii=False)[1:-1],
                }
        self.values = sorted(forms, key=len, reverse=True)
        self._re = re.compile("|".join(re.escape(v) for v in self.values)) if self.values else None

    def __bool__(self) -> bool:
        return self._re is not None

    def mask(self, text: str) -> str:
        return self._re.sub(MASK, text) if self._re is not None and text else text

    def mask_data(self, data: Any) -> Any:
        """Mask every string (keys too) inside a JSON-like value."""
        if isinstance(data, str):
            return self.mask(data)
        if isinstance(data, dict):
            return {self.mask(str(k)): self.mask_data(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.mask_data(v) for v in data]
        return data

    def held(self, text: str) -> int:
        """Length of the longest end of ``text`` that is the start of a secret (0: none)."""
        best = 0
        for value in self.values:
            for k in range(min(len(value) - 1, len(text)), best, -1):
                if text.endswith(value[:k]):
                    best = k
                    break
        return best

    def stream(
        self, events: list[dict[str, Any]], carry: dict[str, str]
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Mask a batch of events, carrying over per stream what could begin a secret."""
        carry = dict(carry)
        out = []
        for event in events:
            stream = event.get("stream")
            if stream not in CARRY_STREAMS:
                out.append({**event, "message": self.mask(str(event.get("message", "")))})
                continue
            text = self.mask(carry.pop(stream, "") + str(event.get("message", "")))
            keep = self.held(text)
            if keep:
                carry[stream] = text[-keep:]
                text = text[:-keep]
            if text:
                out.append({**event, "message": text})
        return out, carry

    @staticmethod
    def flush(carry: dict[str, str]) -> list[dict[str, Any]]:
        """Events for the held ends when the output stops: a held end is a secret's first part,
        so anything longer than two characters goes out masked."""
        return [
            {"stream": stream, "message": text if len(text) < 3 else MASK}
            for stream, text in carry.items()
            if text
        ]


class SecretService:
    """Project variables (plain and secret), execution snapshots, and maskers per execution."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._fernet: Fernet | None = None
        self._maskers: OrderedDict[str, Masker] = OrderedDict()

    # --- the master key -------------------------------------------------------------------------

    def _box(self) -> Fernet:
        if self._fernet is None:
            key = self.ctx.config.secret_key.strip()
            if not key:
                path = os.path.join(self.ctx.config.data_dir, "secrets", "variables.key")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "wb") as fp:
                        fp.write(Fernet.generate_key())
                with open(path, "rb") as fp:
                    key = fp.read().decode().strip()
            self._fernet = Fernet(key.encode())
        return self._fernet

    def seal(self, data: dict[str, str]) -> str:
        return self._box().encrypt(json.dumps(data).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, str]:
        if not sealed:
            return {}
        try:
            data = json.loads(self._box().decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            raise InvalidInput(
                "Stored secrets cannot be decrypted.",
                hint="The master's secret key changed: set the project's secrets again.",
            ) from None
        return {str(k): str(v) for k, v in data.items()}

    # --- project variables ----------------------------------------------------------------------

    @staticmethod
    def public(project: Doc) -> list[dict[str, Any]]:
        """The project's variables as the API shows them: secret values never."""
        out = []
        for name, var in sorted((project.get("variables") or {}).items()):
            secret = bool(var.get("secret"))
            out.append(
                {
                    "name": name,
                    "value": None if secret else var.get("value", ""),
                    "secret": secret,
                    "mtime": isoformat(as_dt(var.get("mtime"))),
                }
            )
        return out

    async def set(self, project: Doc, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidInput("The request body must be a JSON object.")
        name, value, secret = body.get("name"), body.get("value"), body.get("secret", False)
        if not isinstance(name, str) or not NAME.match(name):
            raise InvalidInput(
                f"{name!r} is not an environment variable name.",
                hint='Letters, digits and "_", not starting with a digit: {"name": "API_KEY", '
                '"value": "...", "secret": true}.',
            )
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise InvalidInput(f"'value' must be a string of at most {MAX_VALUE} characters.")
        if not isinstance(secret, bool):
            raise InvalidInput("'secret' must be true or false.")
        if secret and len(value) < MIN_SECRET:
            raise InvalidInput(
                f"A secret needs at least {MIN_SECRET} characters.",
                hint="Shorter values cannot be masked in logs; store it as a plain variable.",
            )
        var: Doc = {"secret": secret, "mtime": utcnow()}
        if secret:
            var["sealed"] = self.seal({"v": value})
        else:
            var["value"] = value
        await self.ctx.store.projects.update_one(
            {"_id": project["_id"]}, {"$set": {f"variables.{name}": var}}
        )
        return {"name": name, "value": None if secret else value, "secret": secret}

    async def delete(self, project: Doc, name: str) -> None:
        if name not in (project.get("variables") or {}):
            raise NotFound(f"No environment variable {name!r} in this project.")
        await self.ctx.store.projects.update_one(
            {"_id": project["_id"]}, {"$unset": {f"variables.{name}": ""}}
        )

    def snapshot(self, project: Doc, overrides: dict[str, Any]) -> tuple[dict[str, str], Doc]:
        """Split the project's variables for a new execution: (plain ones, fields to store).

        Variables the request sets itself are left out; the secret ones are sealed together.
        """
        plain: dict[str, str] = {}
        secrets: dict[str, str] = {}
        for name, var in (project.get("variables") or {}).items():
            if name in overrides:
                continue
            if var.get("secret"):
                secrets[name] = self.open(var.get("sealed"))["v"]
            else:
                plain[name] = str(var.get("value", ""))
        fields: Doc = {"sealed_secrets": self.seal(secrets)} if secrets else {}
        return plain, fields

    # --- executions -----------------------------------------------------------------------------

    def secrets_of(self, execution: Doc) -> dict[str, str]:
        """The execution's secret variables, decrypted (for its claim spec only)."""
        return self.open(execution.get("sealed_secrets"))

    async def masker(self, execution_id: str, execution: Doc | None = None) -> Masker:
        """The masker of an execution (cached: an execution's secrets never change)."""
        cached = self._maskers.get(execution_id)
        if cached is not None:
            self._maskers.move_to_end(execution_id)
            return cached
        # A whole execution document (it has a status) without sealed secrets has none.
        if execution is None or ("sealed_secrets" not in execution and "status" not in execution):
            execution = await self.ctx.store.executions.find_one(
                {"_id": execution_id}, {"sealed_secrets": 1}
            )
        if execution is None:  # not created yet: nothing to mask, and nothing to remember
            return Masker(())
        try:
            masker = Masker(self.secrets_of(execution).values())
        except InvalidInput:
            masker = Masker(())
        self._maskers[execution_id] = masker
        while len(self._maskers) > CACHE_SIZE:
            self._maskers.popitem(last=False)
        return masker

    def open_carry(self, execution: Doc) -> dict[str, str]:
        try:
            return self.open(execution.get("mask_carry"))
        except InvalidInput:
            return {}

    def seal_carry(self, carry: dict[str, str]) -> str | None:
        return self.seal(carry) if any(carry.values()) else None
