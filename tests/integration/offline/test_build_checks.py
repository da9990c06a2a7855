"""A build checks its transform's output and its fields' constraints before it commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import deltalake
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlray.config import load_settings
from mlray.errors import SchemaError
from mlray.features import Entity, FeatureRepository, FeatureView, Field
from mlray.store import FeatureStore

START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=1)
user = Entity("user", ("user_id",))


def raw_events() -> pd.DataFrame:
    """10 users, one event every 2 hours each over two days: 12 per user in the window."""
    times = pd.date_range(START - timedelta(days=1), END, freq="2h", inclusive="left", tz="UTC")
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(10, dtype=np.int64), len(times)),
            "event_time": np.tile(times.as_unit("us"), 10),
            "price": np.tile(np.arange(len(times), dtype=float), 10),
        }
    )


def make_transform(kind: str):
    """The view's transform; nested, so Ray ships its code with the task."""

    def transform(events: pd.DataFrame) -> pd.DataFrame:
        # Documented dtypes: plain NumPy, so arithmetic on an integer column works.
        assert events.user_id.dtype == np.int64, events.dtypes
        assert str(events.event_time.dtype) == "datetime64[us, UTC]", events.dtypes
        out = pd.DataFrame(
            {
                "user_id": events.user_id,
                "event_time": events.event_time,
                "parity": events.user_id % 2,
                "price": events.price,
            }
        )
        if kind == "bad_values":
            out["parity"] = out.parity.where(out.user_id != 3)  # 12 nulls in the window
            out.loc[out.user_id.isin([5, 7]), "price"] = -1.0  # 24 below ge=0
            out.loc[out.user_id == 8, "parity"] = 2  # 12 above le=1
        elif kind == "naive":
            out["event_time"] = out.event_time.dt.tz_localize(None)
        elif kind == "not_a_frame":
            return out.to_dict()  # type: ignore[return-value]
        return out

    return transform


def view(kind: str = "good") -> FeatureView:
    return FeatureView(
        name="parities",
        entities=[user],
        source="events",
        transform=make_transform(kind),
        schema=[
            Field("parity", pa.int64(), nullable=False, ge=0, le=1),
            Field("price", pa.float64(), ge=0),
        ],
    )


@pytest.fixture(scope="module")
def built(ray_session, tmp_path_factory):
    """One good build (version 0), which the failing builds below must leave as it is."""
    root = tmp_path_factory.mktemp("build_checks") / "data"
    settings = load_settings(config_file=None, data_root=str(root), num_buckets=4)
    deltalake.write_deltalake(
        settings.table_uri("raw", "events"), pa.Table.from_pandas(raw_events())
    )
    fs = FeatureStore(settings, FeatureRepository([view()]))
    [res] = fs.build_features(START, END)
    return settings, fs, res


def test_the_transform_gets_numpy_dtypes(built):
    _, fs, res = built
    assert (res.rows, res.version) == (120, 0)
    df = fs.offline.read(fs.repo.view("parities")).to_pandas()
    assert len(df) == 120 and df.event_time.min() == START and df.event_time.max() < END
    assert (df.parity.astype("int64") == df.user_id.astype("int64") % 2).all()


def test_values_the_fields_forbid_fail_the_build_and_commit_nothing(built):
    settings, fs, _ = built
    bad = FeatureStore(settings, FeatureRepository([view("bad_values")]))
    with pytest.raises(SchemaError) as e:
        bad.build_features(START, END)
    assert str(e.value) == (
        "Rows for feature view 'parities' break its declared fields: "
        "column 'parity': 12 row(s) > le=1; column 'parity': 12 row(s) null (nullable=False); "
        "column 'price': 24 row(s) < ge=0. Nothing was committed; fix the transform "
        "(or the ingested data), or relax the Field."
    )
    assert fs.offline.version(fs.repo.view("parities")) == 0
    # Ingested rows are held to the same fields.
    rows = raw_events().assign(parity=0, price=-2.0).head(5)
    with pytest.raises(SchemaError, match=r"column 'price': 5 row\(s\) < ge=0"):
        bad.ingest("parities", rows)
    assert fs.offline.version(fs.repo.view("parities")) == 0


@pytest.mark.parametrize(
    "kind,needle",
    [
        ("naive", "column 'event_time' is a timestamp without a time zone"),
        ("not_a_frame", "returned dict; it must return a pandas DataFrame"),
    ],
)
def test_a_wrong_transform_output_fails_before_any_commit(built, kind, needle):
    settings, fs, _ = built
    with pytest.raises(SchemaError, match="feature view 'parities'") as e:
        FeatureStore(settings, FeatureRepository([view(kind)])).build_features(START, END)
    assert needle in str(e.value)
    assert fs.offline.version(fs.repo.view("parities")) == 0
