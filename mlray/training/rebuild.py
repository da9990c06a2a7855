"""A registered version's test slice, rebuilt from the version's lineage tags alone.

The tags pin everything the slice came from: the labels table and its Delta
version (``mlray.labels_uri``, ``mlray.delta_versions``), how the labels were
read (``mlray.labels_read``), the feature refs and the views' Delta versions,
and where the test slice starts (``mlray.split``). Paths are resolved against
the data root of ``settings``, so a moved data root works too::

    from mlray.config import load_settings
    from mlray.training.rebuild import rebuild_test_slice

    test = rebuild_test_slice(load_settings(), "ctr_model", version="3")
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import ray.data

from mlray.config import Settings
from mlray.errors import NotFoundError
from mlray.features.repository import FeatureRepository
from mlray.offline import inputs
from mlray.offline.delta_store import OfflineStore
from mlray.offline.filesystems import open_filesystem
from mlray.offline.labels import TimeSlice
from mlray.offline.plan import plan_training_set
from mlray.offline.training_set import join_training_set
from mlray.ray_session import ensure_ray
from mlray.registry import lineage
from mlray.training.dataset import ordered_execution

REQUIRED_TAGS = (
    lineage.TAG_LABELS,
    lineage.TAG_LABELS_READ,
    lineage.TAG_DELTA_VERSIONS,
    lineage.TAG_FEATURES,
    lineage.TAG_SPLIT,
)


def rebuild_test_slice(
    settings: Settings,
    model_name: str,
    version: str | None = None,
    *,
    alias: str | None = None,
    client: Any = None,
    repo: FeatureRepository | None = None,
) -> ray.data.Dataset:
    """The rows a version was evaluated on: its labels and features as pinned, from the test start.

    Args:
        settings: where the data and the registry are (the data root may have moved).
        model_name: the registered model.
        version: its version number; or
        alias: e.g. ``"champion"``.
        client: an MLflow client (default: the settings' tracking store).
        repo: the feature definitions (default: ``settings.feature_repo``).

    Returns:
        The test slice (materialized): label columns plus ``view__feature`` columns, ready for
        :func:`~mlray.training.evaluate.score_dataset`.

    Raises:
        NotFoundError: no such model version, it lacks a lineage tag (registered by an older
            mlray: retrain it), or a pinned table version is gone (vacuumed).
    """
    from mlray.registry.download import resolve_version
    from mlray.registry.tracking import registry_client

    ensure_ray(settings)
    mv = resolve_version(
        client or registry_client(settings),
        model_name,
        alias=alias,
        version=None if version is None else str(version),
    )
    tags = dict(mv.tags or {})
    missing = [t for t in REQUIRED_TAGS if t not in tags]
    if missing:
        raise NotFoundError(
            f"Model {model_name!r} version {mv.version} lacks the lineage tags {missing}, so its "
            "test slice cannot be rebuilt; versions registered by an older mlray lack them: "
            "retrain it with `mlray train`."
        )
    read = json.loads(tags[lineage.TAG_LABELS_READ])
    versions = json.loads(tags[lineage.TAG_DELTA_VERSIONS])
    labels_version = versions.pop("labels", None)
    test_start = datetime.fromisoformat(json.loads(tags[lineage.TAG_SPLIT])["test_start"])
    repo = repo or FeatureRepository.from_module(settings.feature_repo)
    with ordered_execution():
        labels = _labels(
            settings,
            lineage.resolve_path(tags[lineage.TAG_LABELS], str(settings.data_root)),
            labels_version,
            read,
        )
        plan = plan_training_set(
            repo,
            json.loads(tags[lineage.TAG_FEATURES]),
            inputs.arrow_schema(labels, "labels"),
            label_time=read["time"],
            versions={v: int(n) for v, n in versions.items()},
            default_timezone=settings.default_timezone,
        )
        ts = join_training_set(plan, labels, OfflineStore(settings))
        return ts.dataset.map_batches(
            TimeSlice(read["time"], test_start, None), batch_format="pyarrow"
        ).materialize()


def _labels(
    settings: Settings, uri: str, version: int | None, read: dict[str, Any]
) -> ray.data.Dataset:
    """The label rows as the pipeline read them: pinned version, kept columns, time window."""
    opts = settings.storage_options or None
    fs, path = open_filesystem(uri, opts)
    try:
        ds = (
            ray.data.read_parquet(path, filesystem=fs)
            if version is None
            else ray.data.read_delta(uri, version=int(version), storage_options=opts)
        )
    except Exception as e:  # deltalake and pyarrow raise plain errors for a missing table/version
        raise NotFoundError(
            f"The labels table {uri} (version {version}) cannot be read: {e}. Is the data root "
            "right, and was that table version vacuumed?"
        ) from e
    if read.get("columns") is not None:
        ds = ds.select_columns(list(dict.fromkeys([*read["columns"], read["label"], read["time"]])))
    start, end = (
        None if read.get(k) is None else datetime.fromisoformat(read[k]) for k in ("start", "end")
    )
    if start is not None or end is not None:
        ds = ds.map_batches(TimeSlice(read["time"], start, end), batch_format="pyarrow")
    return ds
