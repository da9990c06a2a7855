"""The one way mlray opens a file system for a table or output path: from the settings' options.

:func:`open_filesystem` builds a pyarrow file system from the same
``storage_options`` deltalake gets (``Settings.storage_options``), so a
Parquet read, a Ray Data write and a Delta commit all reach the same
endpoint with the same credentials. ``pyarrow.fs.FileSystem.from_uri`` is
not used: it ignores the options (endpoint, keys) and would talk to AWS
with whatever credentials the environment has.

- local paths and ``file://``: pyarrow's ``LocalFileSystem``, absolute paths.
- ``s3://`` / ``s3a://``: pyarrow's native ``S3FileSystem``, its options
  taken from the deltalake (object_store) keys, e.g. ``AWS_ENDPOINT_URL``,
  ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
  ``AWS_ALLOW_HTTP`` (any case, with or without the ``aws_`` prefix). Native
  rather than deltalake's handler wrapped in ``PyFileSystem``: the C++
  client reads Parquet with parallel ranged requests and no GIL, and it
  pickles by value into Ray tasks (Ray Data ``read_parquet`` and
  ``write_parquet(filesystem=...)``).
- other object stores (``gs://``, ``az://``, ``abfss://`` ...): deltalake's
  own ``DeltaStorageHandler`` in a ``PyFileSystem``, rooted at the bucket
  (container), so the options are read exactly as deltalake reads them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from mlray.errors import ConfigError

S3_SCHEMES = ("s3", "s3a")

# pyarrow S3FileSystem setting -> the storage option names deltalake (object_store) accepts,
# compared in lower case. The first found wins.
_S3_KEYS: dict[str, tuple[str, ...]] = {
    "access_key": ("aws_access_key_id", "access_key_id"),
    "secret_key": ("aws_secret_access_key", "secret_access_key"),
    "session_token": ("aws_session_token", "session_token", "aws_token", "token"),
    "region": ("aws_region", "region", "aws_default_region", "default_region"),
    "endpoint": (
        "aws_endpoint_url_s3",
        "aws_endpoint_url",
        "aws_endpoint",
        "endpoint_url",
        "endpoint",
    ),
    "allow_http": ("aws_allow_http", "allow_http"),
    "virtual_hosted": ("aws_virtual_hosted_style_request", "virtual_hosted_style_request"),
    "skip_signature": ("aws_skip_signature", "skip_signature"),
}
_TRUE = ("1", "true", "yes", "on")


def is_remote(uri: str) -> bool:
    """An object-store URI (``s3://``...), not a local path or ``file://``."""
    return "://" in uri and not uri.startswith("file://")


def open_filesystem(
    uri: str, storage_options: Mapping[str, str] | None
) -> tuple[pafs.FileSystem, str]:
    """A pyarrow file system for ``uri`` and the path of ``uri`` within it.

    Args:
        uri: a local path, ``file://`` URI or object-store URI (``s3://bucket/key``).
        storage_options: the deltalake storage options (``Settings.storage_options``).

    Returns:
        ``(filesystem, path)``: an absolute local path, or ``bucket/key`` for S3,
        or the key within the bucket for other object stores.

    Raises:
        ConfigError: the URI names no bucket, or the options are inconsistent
            (a key id without its secret) or unusable for the store.
    """
    if not is_remote(uri):
        return pafs.LocalFileSystem(), str(Path(uri.removeprefix("file://")).expanduser().resolve())
    scheme, rest = uri.split("://", 1)
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ConfigError(f"{uri} names no bucket; write it as {scheme}://<bucket>/<path>.")
    if scheme.lower() in S3_SCHEMES:
        return pafs.S3FileSystem(**s3_filesystem_args(storage_options, bucket)), rest.rstrip("/")
    from deltalake.exceptions import DeltaError
    from deltalake.fs import DeltaStorageHandler

    try:
        handler = DeltaStorageHandler(f"{scheme}://{bucket}", dict(storage_options or {}))
    except (OSError, DeltaError) as e:  # deltalake reads the options here, and the scheme
        raise ConfigError(
            f"Cannot open {uri} with the storage options (Settings.storage_options, "
            f"MLRAY_STORAGE_OPTIONS): {e}"
        ) from e
    return pafs.PyFileSystem(handler), key.rstrip("/")


def s3_filesystem_args(
    storage_options: Mapping[str, str] | None, bucket: str | None = None
) -> dict[str, Any]:
    """Keyword arguments of ``pyarrow.fs.S3FileSystem`` from deltalake-style storage options.

    Options deltalake alone uses (``AWS_S3_ALLOW_UNSAFE_RENAME``, ``conditional_put``...)
    are left out. Without a region or endpoint, the bucket's region is asked of
    AWS (as ``FileSystem.from_uri`` does); without keys, pyarrow uses the AWS
    default credential chain, as deltalake does.

    Raises:
        ConfigError: a key id without a secret key, or the reverse.
    """
    opts = {k.lower(): v for k, v in (storage_options or {}).items() if v is not None}
    got = {
        name: next((opts[k] for k in keys if k in opts), None) for name, keys in _S3_KEYS.items()
    }
    args: dict[str, Any] = {}
    if bool(got["access_key"]) != bool(got["secret_key"]):
        raise ConfigError(
            "storage_options give only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; "
            "give both (or neither, to use the AWS default credentials)."
        )
    if got["access_key"]:
        args.update(access_key=got["access_key"], secret_key=got["secret_key"])
        if got["session_token"]:
            args["session_token"] = got["session_token"]
    if str(got["skip_signature"]).lower() in _TRUE:
        args["anonymous"] = True
    endpoint = got["endpoint"]
    if endpoint:
        scheme, sep, host = endpoint.partition("://")
        if sep:
            args.update(endpoint_override=host.rstrip("/"), scheme=scheme.lower())
        else:
            http = str(got["allow_http"]).lower() in _TRUE
            args.update(endpoint_override=endpoint.rstrip("/"), scheme="http" if http else "https")
    if got["region"]:
        args["region"] = got["region"]
    elif not endpoint and bucket:
        # Unreachable or no such bucket: pyarrow's default region; the read or write will say.
        with contextlib.suppress(OSError):
            args["region"] = pafs.resolve_s3_region(bucket)
    if str(got["virtual_hosted"]).lower() in _TRUE:
        args["force_virtual_addressing"] = True
    return args
