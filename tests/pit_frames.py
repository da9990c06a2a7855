"""Seeded labels and feature rows for point-in-time join tests (late availability, nulls,
unknown entities), and a splitter into many blocks; shared by the offline and multi-node tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make(n_labels=3000, n_feats=20000, entities=300, seed=0):
    rng = np.random.default_rng(seed)
    base = pd.Timestamp("2026-01-01", tz="UTC")
    lab = pd.DataFrame(
        {
            "label_id": np.arange(n_labels),
            "user_id": rng.integers(0, entities + 20, n_labels),
            "event_time": base + pd.to_timedelta(rng.integers(0, 10**5, n_labels), unit="s"),
        }
    )
    fea = pd.DataFrame(
        {
            "user_id": rng.integers(0, entities, n_feats),
            "event_time": base + pd.to_timedelta(rng.integers(0, 10**5, n_feats), unit="s"),
        }
    )
    fea["available_time"] = fea.event_time + pd.to_timedelta(
        rng.integers(0, 7200, n_feats), unit="s"
    )
    fea["f"] = rng.random(n_feats)
    fea.loc[fea.sample(frac=0.05, random_state=1).index, "f"] = np.nan
    return lab, fea


def chunks(df: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    step = -(-len(df) // n)
    return [df.iloc[i : i + step] for i in range(0, len(df), step)]
