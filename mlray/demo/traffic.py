"""Demo traffic for the serving app: request bodies over the demo's users and items, over HTTP."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

DEVICES = ("mobile", "desktop", "tablet")


def demo_bodies(n: int, *, users: int, items: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` ``/predict`` bodies: random demo users and items, a device and a shown price."""
    rnd = random.Random(seed)
    return [
        {
            "entities": {"user_id": rnd.randrange(users), "item_id": rnd.randrange(items)},
            "context": {"device": rnd.choice(DEVICES), "price": round(rnd.uniform(2, 200), 2)},
        }
        for _ in range(n)
    ]


def bodies_like_impressions(
    impressions_uri: str,
    n: int,
    *,
    days: float = 1.0,
    seed: int = 0,
    storage_options: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """``n`` ``/predict`` bodies drawn from the demo's own impressions of its last ``days``.

    Who asks for what, on which device and at which price then follows the
    generator (active users more often, prices as shown), so the served
    traffic has the distribution the models were trained on: drift checks on
    it find none, unlike on :func:`demo_bodies`' uniform draws.
    """
    import numpy as np
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    table = DeltaTable(impressions_uri, storage_options=storage_options or None).to_pyarrow_table(
        columns=["user_id", "item_id", "device", "price", "event_time"]
    )
    if table.num_rows == 0:
        return []
    newest = pc.max(table["event_time"]).as_py()
    since = newest.timestamp() - days * 86_400
    recent = table.filter(
        pc.greater_equal(pc.cast(table["event_time"], "int64"), int(since * 1e6))
    ).to_pylist()
    pick = np.random.default_rng(seed).integers(0, len(recent), n)
    return [
        {
            "entities": {"user_id": recent[i]["user_id"], "item_id": recent[i]["item_id"]},
            "context": {"device": recent[i]["device"], "price": recent[i]["price"]},
        }
        for i in pick
    ]


@dataclass
class Traffic:
    """What a run of :func:`send` got back."""

    latencies_ms: list[float] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    errors: int = 0

    @property
    def request_ids(self) -> list[str]:
        return [a["request_id"] for a in self.answers]

    def percentile(self, q: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q / 100 * len(xs)))] if xs else float("nan")


def send(url: str, bodies: list[dict[str, Any]], *, batch_size: int = 0) -> Traffic:
    """POST ``bodies`` one by one to ``/predict`` (and, with ``batch_size``, the rest in batches).

    Latency is measured by the client, per HTTP call, on a kept-alive connection.
    """
    import requests

    out = Traffic()
    with requests.Session() as http:
        singles = bodies if not batch_size else bodies[: len(bodies) // 2]
        for body in singles:
            _call(http, f"{url}/predict", body, out, lambda r: [r])
        rest = bodies[len(singles) :]
        for i in range(0, len(rest), batch_size or 1):
            chunk = {"requests": rest[i : i + batch_size]}
            _call(http, f"{url}/predict/batch", chunk, out, lambda r: r["predictions"])
    return out


def _call(http: Any, url: str, body: dict[str, Any], out: Traffic, unpack: Any) -> None:
    t0 = time.perf_counter()
    r = http.post(url, json=body, timeout=10)
    out.latencies_ms.append((time.perf_counter() - t0) * 1e3)
    if r.status_code == 200:
        out.answers.extend(unpack(r.json()))
    else:
        out.errors += 1
