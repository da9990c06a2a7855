"""Several independent writers append to one prediction log on s3:// and no commit is lost.

A serve app funnels its rows through one committer, but two apps (or an app and a
replica flushing on shutdown, or a replay job) are independent writers of the same
table. On S3, deltalake 1.x orders their commits with S3 conditional puts
(``If-None-Match: *`` on ``_delta_log/<version>.json``; its DynamoDB lock is gone), which
AWS S3, MinIO and the moto server honour: a writer that loses the race to a version
retries on the next one.
"""

from __future__ import annotations

from collections import Counter

import deltalake
import ray

from mlray.config import Settings
from mlray.serving.prediction_log import DeltaLogWriter, LogRow

T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def log_rows(ids: list[str]) -> list[LogRow]:
    return [
        LogRow(
            request_id=i,
            request_time_us=T0_US + n,
            route="/predict",
            model_name="ctr_model",
            entities={"user_id": n},
            context={},
            features={},
            feature_event_times={},
            missing_features=[],
            score=0.5,
            model_version="1",
            latency_ms=1.0,
            degraded=False,
        )
        for n, i in enumerate(ids)
    ]


def logged(uri: str, settings: Settings) -> tuple[deltalake.DeltaTable, Counter[str]]:
    table = deltalake.DeltaTable(uri, storage_options=settings.storage_options)
    ids = table.to_pyarrow_table(columns=["request_id"]).column("request_id").to_pylist()
    return table, Counter(ids)


def test_a_writer_behind_another_does_not_overwrite_its_commit(s3_settings: Settings):
    uri = s3_settings.table_uri("predictions", "race")
    a = DeltaLogWriter(uri, s3_settings.storage_options)
    b = DeltaLogWriter(uri, s3_settings.storage_options)
    assert a.append(log_rows(["a0"])) == 1  # creates the table; a keeps it open at version 0
    assert b.append(log_rows(["b0", "b1"])) == 2  # version 1, which a has not seen
    assert a.append(log_rows(["a1"])) == 1  # a tries version 1, finds it taken, commits 2
    table, ids = logged(uri, s3_settings)
    assert table.version() == 2
    assert ids == Counter({"a0": 1, "b0": 1, "b1": 1, "a1": 1})


def test_four_writers_appending_at_once_lose_no_commit(s3_settings: Settings):
    uri, opts = s3_settings.table_uri("predictions", "predictions"), s3_settings.storage_options

    # Nested and using only mlray, so Ray ships it by value (workers cannot import this module).
    def writer(commits: list[list[LogRow]]) -> int:
        w = DeltaLogWriter(uri, opts)
        return sum(w.append(rows) for rows in commits)

    task = ray.remote(num_cpus=0.5)(writer)  # four at once on the session's two CPUs
    work = [[log_rows([f"w{k}-c{c}-r0", f"w{k}-c{c}-r1"]) for c in range(5)] for k in range(4)]
    assert ray.get([task.remote(commits) for commits in work]) == [10, 10, 10, 10]
    table, ids = logged(uri, s3_settings)
    assert table.version() == 19 and len(table.history()) == 20  # 20 commits, versions 0..19
    assert ids == Counter(
        {f"w{k}-c{c}-r{r}": 1 for k in range(4) for c in range(5) for r in (0, 1)}
    )
