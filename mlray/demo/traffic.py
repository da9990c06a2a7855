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
