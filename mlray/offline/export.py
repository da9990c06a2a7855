"""Writing training sets to Parquet or Delta (labels are read by :mod:`mlray.offline.labels`).

:func:`check_output` runs before the join (no Ray): an existing output is
refused unless overwriting is asked for, and so is a path that is, holds or
sits inside the offline feature tables or the labels being read.
:func:`write_training_set` writes a local output next to its target and
only then moves it into place (two renames in one directory), so a failed
or interrupted write leaves the old output untouched and never half-written.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import deltalake
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import ray.data

from mlray.config import Settings
from mlray.errors import ConfigError
from mlray.offline.filesystems import is_remote, open_filesystem
from mlray.offline.training_set import TrainingSet


def check_output(
    settings: Settings,
    out: str,
    *,
    overwrite: bool = False,
    labels: str | None = None,
    flag: str = "overwrite=True",
) -> str:
    """Check where a training set will be written, before any work; return the location.

    Args:
        settings: for the offline store's location.
        out: a local path or a URI.
        overwrite: replace an existing output.
        labels: the labels' location, which the output may not replace.
        flag: how the caller spells "overwrite" in messages (``--overwrite`` in the CLI).

    Raises:
        ConfigError: the output exists (and ``overwrite`` is off), or it is,
            holds or sits inside the offline feature tables or the labels.
    """
    target = _normalize(out)
    name = f"--out {out}" if flag.startswith("--") else f"Output {out}"
    protected = [(_normalize(settings.table_uri("features", "")), "the offline feature tables")]
    if labels:
        protected.append((_normalize(labels), "the labels it reads"))
    for path, what in protected:
        if _overlaps(target, path):
            raise ConfigError(
                f"{name} would overwrite {what} ({path}); write the training set "
                "somewhere else, e.g. ts.parquet."
            )
    if not overwrite and _exists(target, settings.storage_options):
        raise ConfigError(
            f"{name} already exists; pass {flag} to replace it (atomically), or choose a new path."
        )
    return target


def write_training_set(
    ts: TrainingSet,
    out: str,
    *,
    delta: bool = False,
    overwrite: bool = False,
    storage_options: Mapping[str, str] | None = None,
) -> int:
    """Write the rows and return their count; an existing ``out`` is replaced only on ``overwrite``.

    Parquet: a directory of Parquet files (one file with the schema when
    there are no rows). Delta: one table; an existing Delta table gets an
    overwrite commit (its history kept). A local output is written beside
    ``out`` and moved into place; on object storage an overwrite of Parquet
    deletes the old output first (not atomic there).

    Args:
        ts: the training set.
        out: a local path or a URI (``s3://bucket/path``).
        delta: write a Delta table instead of Parquet files.
        overwrite: replace an existing output.
        storage_options: object-store options (``Settings.storage_options``).

    Raises:
        ConfigError: ``out`` exists and ``overwrite`` is off.
    """
    so = dict(storage_options or {}) or None
    if not overwrite and _exists(_normalize(out), so):
        raise ConfigError(
            f"Output {out} already exists; pass overwrite=True to replace it, or choose a new path."
        )
    ds = ts.dataset.materialize()  # run the join once, then write and count the same blocks
    rows = ds.count()
    schema = _schema(ts, ds)
    if is_remote(out):
        out = out.rstrip("/")
        fs, path = open_filesystem(out, so)
        is_table = delta and deltalake.DeltaTable.is_deltatable(out, storage_options=so)
        if overwrite and not is_table and fs.get_file_info(path).type == pafs.FileType.Directory:
            fs.delete_dir(path)
        _write(ds, schema, rows, out, delta, so)
        return rows
    target = Path(out.removeprefix("file://"))
    if delta and overwrite and (target / "_delta_log").is_dir():
        _write(ds, schema, rows, str(target), delta, so)
        return rows
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.mlray-tmp-{uuid.uuid4().hex[:8]}")
    try:
        _write(ds, schema, rows, str(tmp), delta, so)
        _swap(tmp, target)
    finally:
        _remove(tmp)
    return rows


def _write(
    ds: ray.data.Dataset,
    schema: pa.Schema,
    rows: int,
    out: str,
    delta: bool,
    storage_options: dict[str, str] | None,
) -> None:
    if delta:
        batches = (
            b
            for t in ds.iter_batches(batch_format="pyarrow", batch_size=None)
            for b in cast(pa.Table, t).cast(schema).to_batches()
        )
        deltalake.write_deltalake(
            out,
            pa.RecordBatchReader.from_batches(schema, batches),
            mode="overwrite",
            schema_mode="overwrite",
            storage_options=storage_options,
        )
        return
    fs, path = open_filesystem(out, storage_options)
    if rows == 0:
        fs.create_dir(path)
        pq.write_table(schema.empty_table(), f"{path}/part-0.parquet", filesystem=fs)
    else:
        ds.write_parquet(path, filesystem=fs)


def _schema(ts: TrainingSet, ds: ray.data.Dataset) -> pa.Schema:
    """The rows' schema: the written blocks' own when there are rows, else the planned one."""
    got = ds.schema()
    if got is None:
        return ts.schema if ts.schema is not None else pa.schema([])
    base = getattr(got, "base_schema", None)
    if isinstance(base, pa.Schema):
        return base
    return pa.schema(list(zip(got.names, got.types, strict=True)))


def _swap(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, replacing what was there (rename: both sit in one directory)."""
    if not target.exists() and not target.is_symlink():
        os.rename(new, target)
        return
    old = target.with_name(f".{target.name}.mlray-old-{uuid.uuid4().hex[:8]}")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        os.rename(old, target)
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _normalize(location: str) -> str:
    if is_remote(location):
        return location.rstrip("/")
    return str(Path(location.removeprefix("file://")).expanduser().resolve())


def _overlaps(a: str, b: str) -> bool:
    """``a`` is ``b``, inside it, or holds it."""
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def _exists(location: str, storage_options: Mapping[str, str] | None) -> bool:
    if not is_remote(location):
        return os.path.lexists(location.removeprefix("file://"))
    try:
        fs, path = open_filesystem(location, storage_options)
        return fs.get_file_info(path).type != pafs.FileType.NotFound
    except (OSError, pa.ArrowInvalid):  # unreachable or unknown scheme: the write will say
        return False
