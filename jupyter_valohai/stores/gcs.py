"""``gs://bucket/prefix`` artifact store (Google Cloud Storage, or gcp-storage-emulator) via
google-cloud-storage.

Credentials come from the environment (Application Default Credentials); with
``STORAGE_EMULATOR_HOST`` set, the client talks to that emulator anonymously. The ``project``
option names the project. Signed URLs need a service account's private key, which the emulator
does not have: this store sends every upload and download through the master (no direct transfer).
"""

from __future__ import annotations

import os
import shutil
from typing import BinaryIO, cast

from google.api_core.exceptions import GoogleAPIError
from google.api_core.exceptions import NotFound as GoogleNotFound
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import storage

from ..errors import NotConfigured, NotFound, ServiceUnavailable
from .base import ArtifactStore, HashingReader, StoredObject, check_key, split_url

MiB = 1 << 20


class GCSStore(ArtifactStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.bucket_name, self.prefix, options = split_url(url)
        project = options.get("project") or None
        try:
            if os.environ.get("STORAGE_EMULATOR_HOST"):
                client = storage.Client(
                    project=project or "local", credentials=AnonymousCredentials()
                )
            else:
                client = storage.Client(project=project)
        except DefaultCredentialsError:
            raise NotConfigured(
                "No Google Cloud credentials for the gs:// artifact store.",
                hint="Set GOOGLE_APPLICATION_CREDENTIALS for the master.",
            ) from None
        self.bucket = client.bucket(self.bucket_name)

    def check(self) -> None:
        try:
            exists = self.bucket.exists()
        except GoogleAPIError as exc:
            raise self._fail(exc, "") from None
        if not exists:
            raise NotConfigured(
                f"GCS bucket {self.bucket_name!r} does not exist.",
                hint="Create the bucket first.",
            )

    def _blob(self, key: str) -> storage.Blob:
        key = check_key(key)
        return self.bucket.blob(f"{self.prefix}/{key}" if self.prefix else key, chunk_size=8 * MiB)

    def _fail(self, exc: Exception, key: str) -> Exception:
        if isinstance(exc, GoogleNotFound):
            return NotFound(f"No artifact {key!r}.")
        return ServiceUnavailable(
            f"Google Cloud Storage refused {key!r} in bucket {self.bucket_name!r}: "
            f"{exc.__class__.__name__}.",
            hint="Check the bucket and the master's Google Cloud credentials.",
        )

    def put(self, key: str, fp: BinaryIO) -> StoredObject:
        reader = HashingReader(fp)
        try:
            # A resumable upload: the object appears only once all of it is there.
            with self._blob(key).open("wb", ignore_flush=True) as out:
                shutil.copyfileobj(reader, out, 1 << 20)  # type: ignore[misc]
        except GoogleAPIError as exc:
            raise self._fail(exc, key) from None
        return reader.stored(key)

    def open(self, key: str) -> BinaryIO:
        blob = self._blob(key)
        try:
            blob.reload()
        except GoogleAPIError as exc:
            raise self._fail(exc, key) from None
        return cast(BinaryIO, blob.open("rb"))

    def exists(self, key: str) -> bool:
        try:
            return bool(self._blob(key).exists())
        except GoogleAPIError as exc:
            raise self._fail(exc, key) from None

    def size(self, key: str) -> int:
        blob = self._blob(key)
        try:
            blob.reload()
        except GoogleAPIError as exc:
            raise self._fail(exc, key) from None
        return int(blob.size or 0)

    def delete(self, key: str) -> None:
        try:
            self._blob(key).delete()
        except GoogleNotFound:
            pass
        except GoogleAPIError as exc:
            raise self._fail(exc, key) from None
