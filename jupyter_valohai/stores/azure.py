"""``azure://container/prefix`` artifact store (Azure Blob Storage or Azurite).

The connection string comes from the environment, never the URL:
``AZURE_STORAGE_CONNECTION_STRING``, or the variable named by the ``connection_string_env``
option (the credentials reference). Other options: ``expires`` (seconds a SAS URL lives),
``multipart_threshold`` and ``part_size`` (bytes).

Direct uploads use SAS URLs signed with the account key: one Put Blob up to the threshold
(default 64 MiB), else one Put Block per part, committed by the master as a block list.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
from collections.abc import Iterator, Sequence
from typing import BinaryIO, cast
from urllib.parse import quote

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobSasPermissions, BlobServiceClient, generate_blob_sas

from ..errors import InvalidInput, NotConfigured, NotFound, ServiceUnavailable
from .base import (
    ArtifactStore,
    DirectUpload,
    HashingReader,
    StoredObject,
    UploadPart,
    check_key,
    int_option,
    split_url,
)

MiB = 1 << 20
MAX_BLOCKS = 50_000


def block_id(number: int) -> str:
    # Every id of one blob must have the same length; the SDK base64-encodes ids itself.
    return f"part-{number:06d}"


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (a blob download)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray) -> int:  # type: ignore[override]
        while not self.pending:
            try:
                self.pending = next(self.chunks)
            except StopIteration:
                return 0
        n = min(len(buf), len(self.pending))
        buf[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


class AzureBlobStore(ArtifactStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.container, self.prefix, options = split_url(url)
        env_name = options.get("connection_string_env") or "AZURE_STORAGE_CONNECTION_STRING"
        conn = os.environ.get(env_name)
        if not conn:
            raise NotConfigured(
                f"No Azure connection string in ${env_name}.",
                hint=f"Export {env_name} for the master (it is never read from the store URL).",
            )
        self.expires = int_option(options, "expires", 3600)
        self.threshold = int_option(options, "multipart_threshold", 64 * MiB)
        self.part_size = int_option(options, "part_size", 16 * MiB)
        try:
            self.service = BlobServiceClient.from_connection_string(conn)
        except ValueError:
            raise NotConfigured(
                f"${env_name} is not a valid Azure connection string.",
                hint="Copy it from the storage account's Access keys page.",
            ) from None
        self.client = self.service.get_container_client(self.container)

    def check(self) -> None:
        try:
            exists = self.client.exists()
        except AzureError as exc:
            code = getattr(exc, "error_code", None) or exc.__class__.__name__
            raise NotConfigured(
                f"Azure refused the master access to container {self.container!r} ({code}).",
                hint="Check the connection string's account and key.",
            ) from None
        if not exists:
            raise NotConfigured(
                f"Azure container {self.container!r} does not exist.",
                hint="Create the container first.",
            )

    def _key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _blob(self, key: str):  # type: ignore[no-untyped-def]
        return self.client.get_blob_client(self._key(key))

    def _fail(self, exc: Exception, key: str) -> Exception:
        if isinstance(exc, ResourceNotFoundError):
            return NotFound(f"No artifact {key!r}.")
        code = getattr(exc, "error_code", None) or exc.__class__.__name__
        return ServiceUnavailable(
            f"Azure Blob refused {key!r} in container {self.container!r}: {code}.",
            hint="Check the container and the connection string of the master.",
        )

    def put(self, key: str, fp: BinaryIO) -> StoredObject:
        reader = HashingReader(fp)
        try:
            self._blob(key).upload_blob(reader, overwrite=True)
        except AzureError as exc:
            raise self._fail(exc, key) from None
        return reader.stored(key)

    def open(self, key: str) -> BinaryIO:
        try:
            chunks = self._blob(key).download_blob().chunks()
        except AzureError as exc:
            raise self._fail(exc, key) from None
        return cast(BinaryIO, io.BufferedReader(ChunkReader(chunks), 1 << 20))

    def exists(self, key: str) -> bool:
        try:
            return bool(self._blob(key).exists())
        except AzureError as exc:
            raise self._fail(exc, key) from None

    def size(self, key: str) -> int:
        try:
            return int(self._blob(key).get_blob_properties().size)
        except AzureError as exc:
            raise self._fail(exc, key) from None

    def delete(self, key: str) -> None:
        try:
            self._blob(key).delete_blob()
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise self._fail(exc, key) from None

    # --- direct transfer ------------------------------------------------------------------------

    def _sas_url(
        self, key: str, permission: BlobSasPermissions, content_disposition: str | None = None
    ) -> str:
        credential = self.service.credential
        account_key = getattr(credential, "account_key", None)
        if not account_key:
            raise NotConfigured(
                "The Azure connection string has no account key to sign SAS URLs with.",
                hint="Use a connection string with AccountKey=...",
            )
        blob = self._key(key)
        sas = generate_blob_sas(
            account_name=str(self.service.account_name),
            container_name=self.container,
            blob_name=blob,
            account_key=account_key,
            permission=permission,
            expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.expires),
            content_disposition=content_disposition,
        )
        return f"{self.client.url}/{quote(blob)}?{sas}"

    def direct_upload(self, key: str, size: int) -> DirectUpload | None:
        url = self._sas_url(key, BlobSasPermissions(create=True, write=True))
        if size <= self.threshold:
            return DirectUpload(url=url, headers={"x-ms-blob-type": "BlockBlob"})
        part_size = max(self.part_size, -(-size // MAX_BLOCKS))
        parts = []
        for n, offset in enumerate(range(0, size, part_size), start=1):
            encoded = base64.b64encode(block_id(n).encode()).decode()
            part_url = f"{url}&comp=block&blockid={quote(encoded, safe='')}"
            parts.append(UploadPart(n, offset, min(part_size, size - offset), part_url))
        # Uncommitted blocks are named by the blob alone: the blob name is the upload id.
        return DirectUpload(upload_id=self._key(key), parts=tuple(parts))

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        if not parts:
            raise InvalidInput(f"Block upload of {key!r} reported no parts.")
        blocks = [BlobBlock(block_id=block_id(n)) for n, _etag in sorted(parts)]
        try:
            self._blob(key).commit_block_list(blocks)
        except AzureError as exc:
            if getattr(exc, "error_code", "") == "InvalidBlockList":
                if self.exists(key):
                    return  # committed already (a retried registration)
                raise InvalidInput(
                    f"Azure refused the block list of {key!r}.",
                    hint="Upload every part from outputs/prepare before registering.",
                ) from None
            raise self._fail(exc, key) from None

    def download_url(self, key: str, filename: str) -> str | None:
        quoted = filename.replace('"', "")
        return self._sas_url(
            key,
            BlobSasPermissions(read=True),
            content_disposition=f'attachment; filename="{quoted}"',
        )
