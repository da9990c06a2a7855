"""Helpers of the object-store tests: the bucket, the storage options, listing what was written."""

from __future__ import annotations

import pyarrow.fs as pafs

from mlray.config import Settings
from mlray.offline.filesystems import open_filesystem

BUCKET = "mlray-test"


def s3_options(endpoint: str) -> dict[str, str]:
    """The storage options a user sets for an S3-compatible server (as for MinIO)."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


def s3_keys(settings: Settings, prefix: str) -> list[str]:
    """The object keys (``bucket/key``) under ``prefix`` (a URI), for checking what was written."""
    fs, path = open_filesystem(prefix, settings.storage_options)
    return sorted(
        f.path
        for f in fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
        if f.type == pafs.FileType.File
    )
