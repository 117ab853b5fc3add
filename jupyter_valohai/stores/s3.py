"""``s3://bucket/prefix`` artifact store (AWS S3 or any S3 server, e.g. seaweedfs) via boto3.

Options ride in the URL's query string, never secrets: ``endpoint_url``, ``public_endpoint_url``
(the endpoint presigned URLs name, when agents and clients reach S3 by another address than the
master), ``region``, ``addressing_style``, ``profile`` (a named profile of ~/.aws),
``credentials_env`` (a credentials reference: ``NAME`` makes the master read
``NAME_ACCESS_KEY_ID``, ``NAME_SECRET_ACCESS_KEY`` and the optional ``NAME_SESSION_TOKEN`` from
its environment), ``expires`` (seconds a presigned URL lives), ``multipart_threshold`` and
``part_size`` (bytes). Without a reference, credentials come from boto3's usual chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, the profile, an instance role).

Direct uploads: an object up to ``multipart_threshold`` (default 64 MiB) gets one presigned PUT;
a larger one a multipart upload whose parts (``part_size``, default 16 MiB, grown so there are at
most 10,000) each get a presigned PUT, and the master completes it from the agent's ETags.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from typing import Any, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

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
MAX_PARTS = 10_000
MIN_PART = 5 * MiB  # S3 refuses smaller parts (except the last)
MISSING = {"404", "NoSuchKey", "NotFound"}


def env_credentials(options: dict[str, str]) -> dict[str, str]:
    """Credentials named by the ``credentials_env`` option, read from the environment."""
    name = options.get("credentials_env")
    if not name:
        return {}
    key, secret = (os.environ.get(f"{name}_{s}") for s in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY"))
    if not key or not secret:
        raise NotConfigured(
            f"credentials_env={name} names no credentials.",
            hint=f"Export {name}_ACCESS_KEY_ID and {name}_SECRET_ACCESS_KEY for the master.",
        )
    found = {"aws_access_key_id": key, "aws_secret_access_key": secret}
    token = os.environ.get(f"{name}_SESSION_TOKEN")
    return {**found, "aws_session_token": token} if token else found


class S3Store(ArtifactStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.bucket, self.prefix, options = split_url(url)
        self.expires = int_option(options, "expires", 3600)
        self.threshold = int_option(options, "multipart_threshold", 64 * MiB, MIN_PART)
        self.part_size = int_option(options, "part_size", 16 * MiB, MIN_PART)
        endpoint = options.get("endpoint_url") or None
        # Path-style by default off AWS: an S3 server on an IP has no per-bucket host names.
        style = options.get("addressing_style") or ("path" if endpoint else "auto")
        session = boto3.session.Session(
            profile_name=options.get("profile") or None, **env_credentials(options)
        )
        config = Config(
            signature_version="s3v4", s3={"addressing_style": style}, retries={"max_attempts": 3}
        )
        region = options.get("region") or "us-east-1"
        self.client = session.client("s3", endpoint_url=endpoint, region_name=region, config=config)
        # SigV4 signs the host: URLs for others are signed for the address they will use.
        public = options.get("public_endpoint_url")
        self.signer = (
            session.client("s3", endpoint_url=public, region_name=region, config=config)
            if public
            else self.client
        )
        self.transfer = TransferConfig(
            multipart_threshold=self.threshold, multipart_chunksize=self.part_size
        )

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            missing = code in ("404", "NoSuchBucket")
            raise NotConfigured(
                f"S3 bucket {self.bucket!r} at {self.client.meta.endpoint_url} "
                + ("does not exist." if missing else f"refused the master ({code or 'error'})."),
                hint="Create the bucket first."
                if missing
                else "Check the master's S3 credentials and their access to the bucket.",
            ) from None
        except BotoCoreError as exc:
            raise self._fail(exc, "") from None

    def _key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, exc: Exception, key: str) -> Exception:
        """Map a boto error to ours; the message never holds credentials, only codes."""
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in MISSING:
                return NotFound(f"No artifact {key!r}.")
            return ServiceUnavailable(
                f"S3 refused {key!r} in bucket {self.bucket!r}: {code or 'error'}.",
                hint="Check the bucket, the endpoint_url and the S3 credentials of the master.",
            )
        return ServiceUnavailable(
            f"S3 at {self.client.meta.endpoint_url} failed: {exc.__class__.__name__}.",
            hint="Check that the S3 endpoint is reachable from the master.",
        )

    def put(self, key: str, fp: BinaryIO) -> StoredObject:
        reader = HashingReader(fp)
        try:
            self.client.upload_fileobj(reader, self.bucket, self._key(key), Config=self.transfer)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, key) from None
        return reader.stored(key)

    def open(self, key: str) -> BinaryIO:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, key) from None
        return cast(BinaryIO, body)

    def _head(self, key: str) -> dict[str, Any]:
        try:
            return cast(dict, self.client.head_object(Bucket=self.bucket, Key=self._key(key)))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, key) from None

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except NotFound:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, key) from None

    # --- direct transfer ------------------------------------------------------------------------

    def _sign(self, method: str, params: dict[str, Any]) -> str:
        return str(
            self.signer.generate_presigned_url(
                method, Params={"Bucket": self.bucket, **params}, ExpiresIn=self.expires
            )
        )

    def direct_upload(self, key: str, size: int) -> DirectUpload | None:
        full = self._key(key)
        if size <= self.threshold:
            return DirectUpload(url=self._sign("put_object", {"Key": full}))
        part_size = max(self.part_size, math.ceil(size / MAX_PARTS))
        try:
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=full)[
                "UploadId"
            ]
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(exc, key) from None
        parts = []
        for n, offset in enumerate(range(0, size, part_size), start=1):
            params = {"Key": full, "UploadId": upload_id, "PartNumber": n}
            url = self._sign("upload_part", params)
            parts.append(UploadPart(n, offset, min(part_size, size - offset), url))
        return DirectUpload(upload_id=upload_id, parts=tuple(parts))

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> None:
        if not parts:
            raise InvalidInput(f"Multipart upload of {key!r} reported no parts.")
        listing = [{"PartNumber": n, "ETag": etag} for n, etag in sorted(parts)]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": listing},
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchUpload" and self.exists(key):
                return  # completed already (a retried registration)
            if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload"):
                raise InvalidInput(
                    f"S3 refused to complete the upload of {key!r}: {code}.",
                    hint="Upload every part from outputs/prepare and report its ETag.",
                ) from None
            raise self._fail(exc, key) from None
        except BotoCoreError as exc:
            raise self._fail(exc, key) from None

    def abort_upload(self, key: str, upload_id: str) -> None:
        # Best effort: a bucket lifecycle rule reaps what is left.
        with contextlib.suppress(BotoCoreError, ClientError):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
            )

    def download_url(self, key: str, filename: str) -> str | None:
        disposition = 'attachment; filename="{}"'.format(filename.replace('"', ""))
        return self._sign(
            "get_object", {"Key": self._key(key), "ResponseContentDisposition": disposition}
        )
