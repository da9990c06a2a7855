"""point_in_time_join on Ray Datasets: same answers as the kernel, whatever the partitioning."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ray.data
from pit_frames import chunks, make

from mlray.errors import SchemaError
from mlray.offline.asof import JoinSpec, asof_join
from mlray.offline.pit_join import point_in_time_join

pytestmark = pytest.mark.usefixtures("ray_session")


def reference(lab, fea, ttl):
    spec = JoinSpec(
        ("user_id",),
        "event_time",
        "ft",
        ("f",),
        "available_time",
        int(ttl.total_seconds() * 1e6) if ttl else None,
    )
    out = asof_join(
        pa.Table.from_pandas(lab, preserve_index=False),
        pa.Table.from_pandas(fea.rename(columns={"event_time": "ft"}), preserve_index=False),
        spec,
    )
    return out.to_pandas().set_index("label_id").sort_index()


@pytest.mark.parametrize("ttl", [None, timedelta(hours=3)])
def test_ray_join_equals_single_partition_kernel(ttl):
    lab, fea = make()
    # Many small, unsorted, shuffled input blocks on both sides force a real shuffle.
    lds = ray.data.from_pandas(chunks(lab.sample(frac=1, random_state=2), 7))
    fds = ray.data.from_pandas(chunks(fea.sample(frac=1, random_state=3), 9))
    got = point_in_time_join(
        lds,
        fds,
        entity_keys=["user_id"],
        label_time="event_time",
        feature_time="event_time",
        available_time="available_time",
        ttl=ttl,
        num_partitions=5,
    ).to_pandas()
    got = got.set_index("label_id").sort_index()
    ref = reference(lab, fea, ttl)
    assert len(got) == len(lab) and got.index.is_unique
    assert list(got.columns) == ["user_id", "event_time", "f"]
    assert got.index.tolist() == ref.index.tolist()
    np.testing.assert_array_equal(
        got["f"].to_numpy(dtype=float, na_value=np.nan),
        ref["f"].to_numpy(dtype=float, na_value=np.nan),
    )
    assert got["f"].isna().sum() > 0 and got["f"].notna().sum() > len(lab) // 2


def test_parquet_and_delta_paths_join_like_datasets(tmp_path):
    import deltalake
    import pyarrow.parquet as pq

    lab, fea = make(n_labels=800, n_feats=5000, entities=80, seed=4)
    (tmp_path / "labels").mkdir()
    for i, part in enumerate(chunks(lab.sample(frac=1, random_state=5), 3)):
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), tmp_path / "labels" / f"{i}.parquet"
        )
    deltalake.write_deltalake(
        str(tmp_path / "feats"), pa.Table.from_pandas(fea, preserve_index=False)
    )
    args = dict(
        entity_keys=["user_id"],
        label_time="event_time",
        feature_time="event_time",
        available_time="available_time",
        ttl=timedelta(hours=3),
        num_partitions=3,
    )
    got = point_in_time_join(str(tmp_path / "labels"), tmp_path / "feats", **args).to_pandas()
    got = got.set_index("label_id").sort_index()
    ref = reference(lab, fea, timedelta(hours=3))
    assert got.index.tolist() == ref.index.tolist() == list(range(800))
    np.testing.assert_array_equal(
        got["f"].to_numpy(dtype=float, na_value=np.nan),
        ref["f"].to_numpy(dtype=float, na_value=np.nan),
    )
    assert got["f"].notna().sum() > 200


def test_duplicated_label_rows_all_come_back():
    lab, fea = make(n_labels=50)
    lab2 = pd.concat([lab, lab.assign(label_id=lab.label_id + 1000)])
    got = point_in_time_join(
        lab2,
        fea,
        entity_keys=["user_id"],
        label_time="event_time",
        feature_time="event_time",
        available_time="available_time",
    ).to_pandas()
    assert len(got) == 100
    g = got.set_index("label_id").sort_index()
    assert (
        g.loc[lab.label_id, "f"].fillna(-1).to_numpy()
        == g.loc[lab.label_id + 1000, "f"].fillna(-1).to_numpy()
    ).all()


def test_arrow_and_pandas_inputs_and_label_columns_kept():
    lab, fea = make(n_labels=20, n_feats=200, entities=5)
    lab["extra"] = "x"
    out = point_in_time_join(
        pa.Table.from_pandas(lab, preserve_index=False),
        fea,
        entity_keys=["user_id"],
        label_time="event_time",
        feature_time="event_time",
        feature_columns=["f"],
    ).to_pandas()
    assert sorted(out.columns) == ["event_time", "extra", "f", "label_id", "user_id"]
    assert (out.extra == "x").all()


def test_naive_timestamps_are_refused_unless_a_zone_is_configured():
    lab, fea = make(n_labels=10, n_feats=50, entities=3)
    naive = lab.assign(event_time=lab.event_time.dt.tz_localize(None))
    with pytest.raises(SchemaError, match="without a time zone"):
        point_in_time_join(
            naive, fea, entity_keys=["user_id"], label_time="event_time", feature_time="event_time"
        )
    out = point_in_time_join(
        naive,
        fea,
        entity_keys=["user_id"],
        label_time="event_time",
        feature_time="event_time",
        default_timezone="UTC",
    ).to_pandas()
    assert len(out) == 10


def test_bad_columns_name_the_table_and_column():
    lab, fea = make(n_labels=10, n_feats=50, entities=3)
    with pytest.raises(SchemaError, match=r"labels is missing column\(s\) \['ts'\]"):
        point_in_time_join(
            lab, fea, entity_keys=["user_id"], label_time="ts", feature_time="event_time"
        )
    with pytest.raises(SchemaError, match="must be a timestamp"):
        point_in_time_join(
            lab.assign(event_time=1),
            fea,
            entity_keys=["user_id"],
            label_time="event_time",
            feature_time="event_time",
        )
    with pytest.raises(
        SchemaError, match=r"feature column\(s\) \['label_id'\] also exist in labels"
    ):
        point_in_time_join(
            lab,
            fea.assign(label_id=1),
            entity_keys=["user_id"],
            label_time="event_time",
            feature_time="event_time",
        )
