"""The demo feature repository: users and items of the synthetic click stream.

Each view's transform is the one definition of its features: it receives the
complete event history of a set of entities (a pandas batch, sorted by time)
and returns hourly snapshots. Click-through rates are smoothed towards a
prior so they are defined for new entities too.

``request_features`` are computed at request time from the impression's
context (its time, ``device`` and shown ``price``) and the user's stored usual
price: the same function builds them for training sets (from the label
rows) and for online lookups (from the request).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from mlray.features import Entity, FeatureService, FeatureView, Field, OnDemandFeatureView
from mlray.features.windows import window_snapshots

CTR_PRIOR, CTR_STRENGTH = 0.07, 20.0
HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(days=7)

user = Entity("user", ("user_id",), description="A visitor of the shop.")
item = Entity("item", ("item_id",), description="A product in the catalog.")


def smoothed_ctr(clicks: pd.Series, impressions: pd.Series) -> pd.Series:
    """Click-through rate shrunk towards the prior: defined even with no impressions."""
    return (clicks + CTR_PRIOR * CTR_STRENGTH) / (impressions + CTR_STRENGTH)


def user_activity_transform(events: pd.DataFrame) -> pd.DataFrame:
    """Clicks and impressions over 1 h / 24 h / 7 d, CTR and usual price, per user and hour."""
    ev = events.assign(one=1.0, click=events["clicked"].astype(float))
    snap = window_snapshots(
        ev,
        keys=["user_id"],
        time="event_time",
        sums={"impressions": "one", "clicks": "click", "spend": "price"},
        windows={"1h": HOUR, "24h": DAY, "7d": WEEK},
    )
    imp7 = snap["impressions_7d"]
    return pd.DataFrame(
        {
            "user_id": snap["user_id"].astype("int64"),
            "event_time": snap["event_time"],
            **{
                f"{k}_{w}": snap[f"{k}_{w}"].astype("int64")
                for k in ("impressions", "clicks")
                for w in ("1h", "24h", "7d")
            },
            "ctr_24h": smoothed_ctr(snap["clicks_24h"], snap["impressions_24h"]),
            "ctr_7d": smoothed_ctr(snap["clicks_7d"], imp7),
            "usual_price_7d": (snap["spend_7d"] / imp7).where(imp7 > 0),
        }
    )


def item_stats_transform(events: pd.DataFrame) -> pd.DataFrame:
    """CTR over 24 h, popularity over 7 d and the price last shown, per item and hour."""
    ev = events.assign(one=1.0, click=events["clicked"].astype(float))
    snap = window_snapshots(
        ev,
        keys=["item_id"],
        time="event_time",
        sums={"impressions": "one", "clicks": "click"},
        windows={"24h": DAY, "7d": WEEK},
        last=["price"],
    )
    return pd.DataFrame(
        {
            "item_id": snap["item_id"].astype("int64"),
            "event_time": snap["event_time"],
            "ctr_24h": smoothed_ctr(snap["clicks_24h"], snap["impressions_24h"]),
            "popularity_7d": snap["impressions_7d"].astype("int64"),
            "current_price": snap["price"].astype(float),
        }
    )


def item_catalog_transform(changes: pd.DataFrame) -> pd.DataFrame:
    """The catalog as it changes: category and list price, effective at each change."""
    return changes[["item_id", "event_time", "category", "price"]].rename(
        columns={"price": "list_price"}
    )


_counts = [
    Field(f"{k}_{w}", pa.int64(), nullable=False, ge=0)
    for k in ("impressions", "clicks")
    for w in ("1h", "24h", "7d")
]

user_activity = FeatureView(
    name="user_activity",
    entities=[user],
    source="impressions",
    transform=user_activity_transform,
    lookback=WEEK + HOUR,
    availability_delay=timedelta(minutes=5),
    ttl=timedelta(days=8),
    schema=[
        *_counts,
        Field("ctr_24h", pa.float64(), nullable=False, ge=0, le=1),
        Field("ctr_7d", pa.float64(), nullable=False, ge=0, le=1),
        Field("usual_price_7d", pa.float64(), ge=0),
    ],
    description="What a user did recently, snapshotted hourly.",
)

item_stats = FeatureView(
    name="item_stats",
    entities=[item],
    source="impressions",
    transform=item_stats_transform,
    lookback=WEEK + HOUR,
    availability_delay=timedelta(minutes=15),
    ttl=timedelta(days=8),
    schema=[
        Field("ctr_24h", pa.float64(), nullable=False, ge=0, le=1),
        Field("popularity_7d", pa.int64(), nullable=False, ge=0),
        Field("current_price", pa.float64(), ge=0),
    ],
    description="How an item performs, snapshotted hourly.",
)

item_catalog = FeatureView(
    name="item_catalog",
    entities=[item],
    source="item_catalog",
    transform=item_catalog_transform,
    schema=[
        Field("category", pa.string(), nullable=False, default="unknown"),
        Field("list_price", pa.float64(), ge=0),
    ],
    description="Catalog attributes, effective from each change.",
)

ctr_model_v1 = FeatureService(
    "ctr_model_v1",
    (
        "user_activity:impressions_1h",
        "user_activity:clicks_1h",
        "user_activity:impressions_24h",
        "user_activity:clicks_24h",
        "user_activity:impressions_7d",
        "user_activity:clicks_7d",
        "user_activity:ctr_24h",
        "user_activity:ctr_7d",
        "user_activity:usual_price_7d",
        "item_stats:ctr_24h",
        "item_stats:popularity_7d",
        "item_stats:current_price",
        "item_catalog:category",
        "item_catalog:list_price",
    ),
)


DEVICES = ("mobile", "desktop", "tablet")


def request_features_transform(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Hour of day (UTC) of the request, shown price over the user's usual price, device one-hot."""
    hour = inputs["request_time"].astype("datetime64[h]").astype(np.int64) % 24
    usual = inputs["user_activity__usual_price_7d"].astype(
        float
    )  # NaN when the user has no history
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(usual > 0, inputs["price"].astype(float) / usual, np.nan)
    device = inputs["device"]
    return {
        "hour_of_day": hour,
        "price_vs_usual": relative,
        **{f"device_{d}": (device == d).astype(np.int64) for d in DEVICES},
    }


request_features = OnDemandFeatureView(
    name="request_features",
    request=[Field("device", pa.string()), Field("price", pa.float64(), ge=0)],
    sources=["user_activity:usual_price_7d"],
    schema=[
        # Follows the clock: the drift monitor compares it with the same hours on earlier days.
        Field("hour_of_day", pa.int64(), ge=0, le=23, seasonal=True),
        Field("price_vs_usual", pa.float64(), ge=0),
        *[Field(f"device_{d}", pa.int64(), ge=0, le=1) for d in DEVICES],
    ],
    transform=request_features_transform,
    description="The impression's request context, relative to what the user usually sees.",
)
