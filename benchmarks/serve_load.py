"""Serving under open-loop HTTP load: the full app against a no-op app, in two Serve modes.

    python benchmarks/serve_load.py [--rates 50,100,200,400] [--seconds 20] [--quick]
        [--modes default,lean] [--data-root DIR] [--max-others CORES] [--profile DIR]
        [--full-args JSON]

Requests leave at fixed times (``rate`` per second, whatever the answers do)
from an aiohttp client on 127.0.0.1 with keep-alive connections, and each
latency is counted from the time the request was due, not from when it was
sent, so a stalled server cannot hide its queue (no coordinated omission).
The client is its own process, with no Ray in it (the Ray driver's threads
share no interpreter with it), and Python's collector is paused for each
rate's window, as a C load generator (wrk) has none. Bodies vary: users
0..149, items 0..39, three devices, random prices. A request that gets an
HTTP error or no answer within 10 s is an error: past its capacity an
open-loop client's queue grows until requests time out, so a rate an app
does not hold counts timeouts; the error target asks for no error at any
rate the no-op app holds, and no HTTP error at any rate.

Two apps, deployed one after the other with the same Serve settings (one
ingress replica, ``max_ongoing_requests`` 64), each warmed up with 2 s at
50 req/s first:

- ``noop``: the same FastAPI ingress (``build_http_app``: body limit, the
  request models built from the champion's features, request ids, a
  background task) with a service that answers a constant Prediction;
- ``full``: ``mlray.serving.app:build_app`` (online features from Redis,
  champion in-process, challenger scored in shadow after the response, rows
  logged to Delta through the PredictionLogger). After a graceful
  ``serve.delete`` the log table must hold a row for every 200 answer.

Each mode runs in a fresh subprocess of this script with its own
``ray.init(num_cpus=2)`` and ``serve.start`` (Serve reads its environment at
import): ``default``, and ``lean`` (``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``:
direct ingress, gRPC between deployments; the client then talks to the
ingress replica's own port). The data (demo click stream ending now, features
materialized in the embedded Redis, champion v1 and challenger v2 trained with
one epoch) is built once per invocation in a temp dir, or reused from
``--data-root``.

Beside the latencies, each rate records the cores used by this run's own
processes and by everything else on the machine (other work moves every
figure; ``--max-others`` waits for a quiet machine before each app), the CPU
ms per request of each process (ingress, proxy, logger, Redis, Ray), and the
seconds of the run in which some answer took over 50 ms (a rhythm points at
a periodic stall). ``--profile DIR`` records py-spy profiles of the replicas
and the proxy; ``--full-args`` overrides the full app's args for experiments.

Targets (2 cores): full-app p99 within 3 ms of the no-op app's at every rate
the no-op app holds (held: p99 < 20 ms, no error, >= 95% of the offered
rate); the full app's highest held rate >= 0.9x the no-op app's; lean mode
full-app p99 < 20 ms at 200 req/s; zero errors (as above); zero lost log rows. Results:
``benchmarks/results/serve_load.json`` for the standard run,
``serve_load_quick.json`` (``--quick``) or ``serve_load_custom.json`` otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # local cluster, loopback only
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import print_table, write_json  # noqa: E402

MODEL = "ctr_model"
PROJECT = "serveload"
MARKER = "serve_load_setup.json"
P99_LIMIT_MS = 20.0
P99_MARGIN_MS = 3.0
HELD_FRACTION = 0.95  # of the offered rate
SLOW_S = 0.05  # answers slower than this are listed by second of the run (stalls show as a rhythm)
USERS, ITEMS, DEVICES = 150, 40, ("mobile", "desktop", "tablet")
MODES: dict[str, dict[str, str]] = {
    "default": {},
    # The direct-ingress replica otherwise waits 30 s on delete for a load balancer to notice.
    "lean": {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
    },
}
WARMUP = (50, 2)  # req/s, seconds before the measured rates of each app (logged, not reported)


# ----------------------------------------------------------------------------- data setup


def bench_settings(root: Path) -> Any:
    from mlray.config import load_settings

    return load_settings(config_file=None, data_root=str(root), num_buckets=4, project=PROJECT)


def setup_data(root: Path) -> None:
    """Demo data up to now, materialized features, champion v1, challenger v2 (as conftest)."""
    import ray

    from mlray.demo.generate import generate_clickstream
    from mlray.pipeline import run_pipeline
    from mlray.store import FeatureStore
    from mlray.training.config import load_train_config

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    s = bench_settings(root)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    demo = generate_clickstream(
        s.raw_root,
        users=USERS,
        items=ITEMS,
        days=11,
        seed=5,
        progress=False,
        # Training starts once the 7-day windows are full (labels.start_after_lookback):
        # nine days of history before now leave the last two to train on.
        start=hour - timedelta(days=9),
    )
    fs = FeatureStore(s)
    fs.build_features(demo.start, demo.end)
    fs.materialize(datetime.now(UTC))
    fs.close()
    body: dict[str, Any] = {
        "experiment": "serve-load",
        "tune": {"num_samples": 0},
        "training": {"epochs": 1, "batch_size": 256},
        "labels": {"end": hour.isoformat()},
    }
    run_pipeline(s, load_train_config(None, **body), echo=lambda line: None)
    body["promotion"] = {"margin": 0.5}  # no retrain beats the champion by that: a challenger
    run_pipeline(s, load_train_config(None, **body), echo=lambda line: None)
    (root / MARKER).write_text(json.dumps({"materialized_at": datetime.now(UTC).isoformat()}))
    ray.shutdown()


# ----------------------------------------------------------------------------- the no-op app


class _NoopModels:
    def describe(self) -> dict[str, Any]:
        from mlray.serving.schemas import ModelInfo

        fields = dict.fromkeys(ModelInfo.model_fields)
        return {**fields, "model_name": "noop", "model_version": "0", "runtime": "none"}


class NoopService:
    """``PredictionService``'s face with no work behind it: a constant score, nothing after."""

    models = _NoopModels()

    async def predict(self, requests: Any, route: str, ids: Any, t0s: Any) -> tuple[list, None]:
        from mlray.serving.schemas import Prediction

        answers = [
            Prediction(score=0.5, model_version="0", request_id=rid, missing_features=[])
            for rid in ids
        ]
        return answers, None

    async def complete(self, pending: Any) -> None:
        return None


def noop_app(settings: Any, refs: list[str]) -> Any:
    """The no-op application: same ingress shape and deployment options as the full app's."""
    from ray import serve

    from mlray.serving.config import ServeArgs

    args = ServeArgs()

    @serve.deployment(max_ongoing_requests=args.max_ongoing_requests, health_check_period_s=5)
    @serve.ingress()
    class NoopIngress:
        def __init__(self) -> None:
            from mlray.features.repository import FeatureRepository
            from mlray.serving.heap import freeze_startup_heap
            from mlray.serving.schemas import request_models

            repo = FeatureRepository.from_module(settings.feature_repo)
            self.single, self.batch = request_models(repo, refs, args.max_batch)
            freeze_startup_heap()  # as the full app's ingress does

        def __serve_build_asgi_app__(self) -> Any:
            from mlray.serving.http import build_http_app
            from mlray.serving.schemas import Health

            ok = Health(status="ok", features="ok", model="ok", logger="ok")
            return build_http_app(
                NoopService(),  # type: ignore[arg-type]
                self.single,
                self.batch,
                max_batch=args.max_batch,
                max_body_bytes=args.max_body_bytes,
                health=lambda: ok,
            )

    return NoopIngress.options(num_replicas=args.ingress_replicas).bind()


def served_refs(settings: Any) -> list[str]:
    """The refs the full app's request schema is built from: the champion's, then the shadow's."""
    from mlray.registry.download import download_version
    from mlray.registry.tracking import registry_client

    client, cache = registry_client(settings), settings.table_uri("serving", "models")
    refs = list(download_version(client, MODEL, cache, alias="champion").spec.feature_refs)
    shadow = download_version(client, MODEL, cache, alias="challenger").spec.feature_refs
    return refs + [r for r in shadow if r not in refs]


# ----------------------------------------------------------------------------- the load client


def make_bodies(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [
        json.dumps(
            {
                "entities": {"user_id": rng.randrange(USERS), "item_id": rng.randrange(ITEMS)},
                "context": {"device": rng.choice(DEVICES), "price": round(rng.uniform(1, 200), 2)},
            }
        ).encode()
        for _ in range(n)
    ]


def _pct(values: list[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q)) * 1e3 if values else None


async def drive(
    session: Any, url: str, rate: float, seconds: float, bodies: list[bytes], tag: str
) -> dict[str, Any]:
    """Send ``rate * seconds`` requests at fixed times; latency from each one's due time."""
    loop = asyncio.get_running_loop()
    n = max(1, round(rate * seconds))
    lat: list[float] = []
    lags: list[float] = []
    ok_ids: list[str] = []
    errors: Counter[str] = Counter()
    slow: dict[int, float] = {}  # second of the run -> its slowest answer (ms), if over SLOW_S
    last = [0.0]

    async def one(i: int, due: float) -> None:
        rid = f"{tag}-{i}"
        lags.append(loop.time() - due)
        headers = {"content-type": "application/json", "x-request-id": rid}
        try:
            async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as r:
                await r.read()
                status = r.status
        except Exception as e:  # noqa: BLE001 - every failure is counted by kind
            errors[type(e).__name__] += 1
            return
        done = loop.time()
        if status != 200:
            errors[f"HTTP {status}"] += 1
            return
        lat.append(done - due)
        if done - due > SLOW_S:
            second = int(due - start)
            slow[second] = max(slow.get(second, 0.0), round((done - due) * 1e3, 1))
        ok_ids.append(rid)
        last[0] = max(last[0], done)

    # No collector pause inside the window (wrk has none either): what is alive now is frozen
    # out of the collector's reach, and collection waits until the window's answers are in.
    gc.collect()
    gc.freeze()
    gc.disable()
    cpu0, start, watch = time.process_time(), loop.time() + 0.01, CpuWatch()
    tasks = []
    try:
        for i in range(n):
            due = start + i / rate
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    finally:
        gc.enable()
    span = max(seconds, last[0] - start)
    return {
        "rate": rate,
        "sent": n,
        "ok": len(lat),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "p50_ms": _pct(lat, 50),
        "p90_ms": _pct(lat, 90),
        "p99_ms": _pct(lat, 99),
        "max_ms": _pct(lat, 100),
        "achieved_rps": len(lat) / span,
        "client_lag_p99_ms": _pct(lags, 99),
        "client_cpu_s": time.process_time() - cpu0,
        "cores_mine_others": watch.cores(),
        "cpu_ms_per_request": watch.by_process(per=n),
        "slow_seconds": dict(sorted(slow.items())),
        "ok_ids": ok_ids,
    }


def held(run: dict[str, Any]) -> bool:
    p99 = run["p99_ms"]
    return (
        p99 is not None
        and p99 < P99_LIMIT_MS
        and run["errors"] == 0
        and run["achieved_rps"] >= HELD_FRACTION * run["rate"]
    )


# ----------------------------------------------------------------------------- one mode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ingress_url(app: str, proxy_url: str) -> str:
    """The direct-ingress replica's address when Serve runs one (lean mode), else the proxy's."""
    import ray
    from ray import serve

    controller = serve.context._get_global_client()._controller
    for group in ray.get(controller.get_target_groups.remote(app)):
        if str(group.protocol).upper().endswith("HTTP") and group.targets:
            port = group.targets[0].port
            if f":{port}" not in proxy_url:
                return f"http://127.0.0.1:{port}"
    return proxy_url


class CpuWatch:
    """Cores kept busy by this process tree (Ray, Serve, Redis, client) and by everything else."""

    def __init__(self) -> None:
        self.t0, self.total0, self.mine0 = time.monotonic(), _busy(), _tree_cpu()

    def cores(self) -> tuple[float, float]:
        """(this tree's, others') average busy cores since construction."""
        dt = max(1e-3, time.monotonic() - self.t0)
        now = _tree_cpu()
        mine = sum(v - self.mine0.get(k, ("", 0.0))[1] for k, (_, v) in now.items())
        return mine / dt, max(0.0, _busy() - self.total0 - mine) / dt

    def by_process(self, per: float | None = None) -> dict[str, float]:
        """CPU ms per second (or per ``per`` events in the interval) of each role."""
        dt = max(1e-3, time.monotonic() - self.t0)
        out: Counter[str] = Counter()
        for key, (label, v) in _tree_cpu().items():
            out[label] += (v - self.mine0.get(key, (label, 0.0))[1]) * 1e3
        scale = 1 / per if per else 1 / dt
        return {k: round(v * scale, 3) for k, v in out.most_common()}


def _busy() -> float:
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def _label(p: Any) -> str:
    """A process by role: Serve replica or proxy, Redis, Ray's own processes, this client."""
    if p.pid == os.getpid():
        return "client"
    if p.pid == TREE_ROOT:
        return "driver"
    cmd = p.cmdline()
    head = cmd[0] if cmd else p.name()
    if head.startswith("ray::"):  # ray::ServeReplica:full:Ingress.handle_request -> ingress
        actor = head[5:].split(".")[0].split(" ")[0]
        if actor.startswith("ServeReplica"):
            return "logger" if actor.endswith("PredictionLogger") else "ingress"
        return {"ProxyActor": "proxy", "ServeController": "controller"}.get(actor, "ray other")
    base = Path(head).name
    return base if base in ("redis-server", "raylet", "gcs_server", "py-spy") else "ray other"


EXTRA_PIDS: list[int] = []  # ours but not our children: the embedded redis-server daemon
TREE_ROOT: int | None = None  # the mode's driver (Ray's parent) when this is the client process


def _tree_cpu() -> dict[tuple[int, float], tuple[str, float]]:
    import psutil

    me = psutil.Process(TREE_ROOT or os.getpid())
    out = {}
    extra = []
    for pid in EXTRA_PIDS:
        try:
            extra.append(psutil.Process(pid))
        except psutil.Error:
            continue
    for p in [me, *me.children(recursive=True), *extra]:
        try:
            t = p.cpu_times()
            out[(p.pid, p.create_time())] = (_label(p), t.user + t.system)
        except psutil.Error:
            continue
    return out


def wait_for_quiet(max_cores: float | None, timeout_s: float = 900) -> float:
    """Wait (up to ``timeout_s``) until other processes use under ``max_cores`` for 6 s running.

    Other work on the machine (a test suite with its own Ray) moves every
    figure here; the cores it used are recorded beside each result.
    """
    deadline, quiet = time.monotonic() + timeout_s, 0
    while True:
        watch = CpuWatch()
        time.sleep(2)
        others = watch.cores()[1]
        quiet = quiet + 1 if max_cores is None or others < max_cores else 0
        if quiet >= 3 or time.monotonic() > deadline or max_cores is None:
            return others


def wait_healthy(url: str, timeout_s: float = 120) -> None:
    import urllib.request

    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as e:  # noqa: BLE001 - not ready yet
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"{url}/healthz not ready after {timeout_s} s ({last})")


def start_profile(profile_dir: str | None, name: str, seconds: float) -> list[subprocess.Popen]:
    """py-spy (speedscope format) on each Serve replica and the proxy for one measured rate."""
    import psutil

    if not profile_dir:
        return []
    pids = []
    for p in psutil.Process(TREE_ROOT or os.getpid()).children(recursive=True):
        try:
            if _label(p) in ("ingress", "logger", "proxy"):
                pids.append((_label(p), p.pid))
        except psutil.Error:
            continue
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return [
        subprocess.Popen(
            [spy, "record", "--nonblocking", "-r", "50", "-d", str(int(seconds)), "-p", str(pid),
             "-f", "speedscope", "-o", f"{profile_dir}/{name}-{label}-{pid}.json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for label, pid in pids
    ]  # fmt: skip


async def load_app(url: str, opts: argparse.Namespace, tag: str, profile: str) -> list[dict]:
    """Warm up, then each rate in turn, with a pause between for queues to drain."""
    import aiohttp

    bodies = make_bodies(4096)
    conn = aiohttp.TCPConnector(limit=512, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=10)
    runs = []
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        warm = await drive(session, f"{url}/predict", *WARMUP, bodies, f"{tag}-warm")
        runs.append({**warm, "warmup": True})
        for rate in opts.rates:
            await asyncio.sleep(2)
            spies = start_profile(opts.profile, f"{profile}-{rate}", opts.seconds)
            got = await drive(
                session, f"{url}/predict", rate, opts.seconds, bodies, f"{tag}-{rate}"
            )
            for spy in spies:
                await asyncio.to_thread(spy.wait)
            runs.append(got)
            p99 = got["p99_ms"]
            print(
                f"  {tag}: {rate:g} req/s: p99 {p99 and round(p99, 1)} ms, errors "
                f"{got['error_kinds'] or 0}, cores mine/others "
                f"{'/'.join(f'{c:.2f}' for c in got['cores_mine_others'])}, slow seconds "
                f"{got['slow_seconds'] or '-'}",
                flush=True,
            )
    return runs


def count_logged(settings: Any, table: str, ok_ids: list[str], token: str) -> dict[str, Any]:
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    uri = settings.table_uri("predictions", table)
    ids = DeltaTable(uri, storage_options=settings.storage_options or None).to_pyarrow_table(
        columns=["request_id"]
    )["request_id"]
    mine = ids.filter(pc.starts_with(ids, f"{token}-")).to_pylist()
    lost = sorted(set(ok_ids) - set(mine))
    return {
        "answered_200": len(ok_ids),
        "logged": len(mine),  # may exceed answered_200: requests the client gave up on
        "lost": len(lost),
        "duplicates": len(mine) - len(set(mine)),
        "lost_sample": lost[:20],
    }


def run_client(url: str, opts: argparse.Namespace, tag: str, profile: str) -> list[dict]:
    """:func:`load_app` in its own process: the load generator shares no interpreter (no GIL,
    no collector, no Ray threads) with the Ray driver; it measures the driver's process tree."""
    spec = {"url": url, "tag": tag, "profile_name": profile, "tree_root": os.getpid(),
            "extra_pids": EXTRA_PIDS}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="serve-load-client-") as d:
        spec_path, out = Path(d) / "spec.json", Path(d) / "runs.json"
        spec_path.write_text(json.dumps(spec))
        cmd = [sys.executable, __file__, "--child", "client", "--client-spec", str(spec_path),
               "--child-out", str(out), "--rates", ",".join(f"{r:g}" for r in opts.rates),
               "--seconds", str(opts.seconds)]  # fmt: skip
        if opts.profile:
            cmd += ["--profile", opts.profile]
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def client_main(opts: argparse.Namespace) -> None:
    """The ``--child client`` process: drive the app, write the runs."""
    global TREE_ROOT
    spec = json.loads(Path(opts.client_spec).read_text())
    TREE_ROOT = spec["tree_root"]
    EXTRA_PIDS.extend(spec["extra_pids"])
    runs = asyncio.run(load_app(spec["url"], opts, spec["tag"], spec["profile_name"]))
    Path(opts.child_out).write_text(json.dumps(runs))


class BackgroundLoop:
    """An event loop running in a thread for the whole mode: the client and Serve handles use it."""

    def __init__(self) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


async def logger_stats(app: str) -> dict[str, int]:
    """``PredictionLogger.stats()`` (from a loop: lean mode's handles need one)."""
    from ray import serve

    return await serve.get_deployment_handle("PredictionLogger", app).stats.remote()


def run_mode(mode: str, root: Path, opts: argparse.Namespace) -> dict[str, Any]:
    """One Serve mode in this (fresh) process: no-op app, then full app, same settings."""
    import ray
    from ray import serve

    from mlray.online.embedded import EmbeddedRedis, embedded_dir
    from mlray.serving.app import build_app, parse_args, serving_settings

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    loop = BackgroundLoop()  # handles bind to the loop they are made on: it must keep running
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    proxy_url, token = f"http://127.0.0.1:{port}", f"{mode}{uuid.uuid4().hex[:8]}"
    table = f"serve_load_{mode}"
    full_args = {
        "model_name": MODEL,
        "log": {"table": table},
        "settings": {"data_root": str(root), "project": PROJECT, "num_buckets": 4},
        **json.loads(opts.full_args or "{}"),
    }
    settings = serving_settings(parse_args(full_args))  # starts the embedded Redis once
    EXTRA_PIDS.append(EmbeddedRedis(embedded_dir(bench_settings(root))).pid or 0)
    out: dict[str, Any] = {"mode": mode, "env": MODES[mode], "proxy_url": proxy_url, "apps": {}}
    for app in ("noop", "full"):
        others = wait_for_quiet(opts.max_others)
        t0 = time.perf_counter()
        built = noop_app(settings, served_refs(settings)) if app == "noop" else build_app(full_args)
        serve.run(built, name=app, route_prefix="/")
        url = ingress_url(app, proxy_url)
        wait_healthy(url)
        entry: dict[str, Any] = {
            "url": url,
            "deploy_s": time.perf_counter() - t0,
            "other_cores_before": others,
        }
        print(f"[{mode}] {app} at {url} (ready in {entry['deploy_s']:.1f} s)", flush=True)
        runs = run_client(url, opts, f"{token}-{app}", f"{mode}-{app}")
        if app == "full":
            entry["logger_stats_before_delete"] = loop.run(logger_stats(app))
        t1 = time.perf_counter()
        serve.delete(app)  # graceful: replicas flush their log buffers
        entry["delete_s"] = time.perf_counter() - t1
        if app == "full":
            ok_ids = [rid for r in runs for rid in r["ok_ids"]]
            entry["log"] = count_logged(settings, table, ok_ids, f"{token}-{app}")
        entry["runs"] = [{k: v for k, v in r.items() if k != "ok_ids"} for r in runs]
        out["apps"][app] = entry
    loop.run(serve.shutdown_async())
    loop.close()
    ray.shutdown()
    return out


# ----------------------------------------------------------------------------- report


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def highest_held(runs: list[dict[str, Any]]) -> float:
    return max((r["rate"] for r in runs if held(r)), default=0.0)


def verdicts(results: list[dict[str, Any]]) -> tuple[list[list[Any]], list[list[Any]]]:
    """(comparison rows, target rows) from the mode results."""
    comparisons: list[list[Any]] = []
    targets: list[list[Any]] = []
    errors = lost = overload = 0
    for res in results:
        mode, apps = res["mode"], res["apps"]
        noop = {r["rate"]: r for r in apps["noop"]["runs"] if not r.get("warmup")}
        full = {r["rate"]: r for r in apps["full"]["runs"] if not r.get("warmup")}
        close: bool | None = None  # None: the no-op app held no rate, nothing to compare
        for rate, n in noop.items():
            f = full.get(rate)
            diff = (f["p99_ms"] - n["p99_ms"]) if f and f["p99_ms"] and n["p99_ms"] else None
            if held(n):
                close = (close is not False) and diff is not None and diff <= P99_MARGIN_MS
            comparisons.append(
                [mode, rate, n["p99_ms"], f and f["p99_ms"], diff, "yes" if held(n) else "no"]
            )
        hn, hf = highest_held(list(noop.values())), highest_held(list(full.values()))
        res["highest_held"] = {"noop": hn, "full": hf, "ratio": hf / hn if hn else None}
        targets.append([mode, f"full p99 within {P99_MARGIN_MS:g} ms of no-op where held", close])
        targets.append(
            [
                mode,
                f"highest held rate full/no-op >= 0.9 ({hf:g}/{hn:g})",
                hf >= 0.9 * hn if hn else None,
            ]
        )
        if mode == "lean" and 200 in full:
            p = full[200]["p99_ms"]
            targets.append(
                [
                    mode,
                    f"full p99 < 20 ms at 200 req/s ({p and round(p, 1)})",
                    p is not None and p < P99_LIMIT_MS,
                ]
            )
        held_rates = {rate for rate, n in noop.items() if held(n)}
        for a in apps.values():
            for r in a["runs"]:
                http = sum(v for k, v in r["error_kinds"].items() if k.startswith("HTTP"))
                errors += r["errors"] if r["rate"] in held_rates else http
                overload += 0 if r["rate"] in held_rates else r["errors"] - http
        lost += apps["full"]["log"]["lost"] + apps["full"]["log"]["duplicates"]
    targets.append(
        [
            "all",
            f"zero errors where the no-op app holds, no HTTP error anywhere ({errors}; "
            f"{overload} timeouts past capacity)",
            errors == 0,
        ]
    )
    targets.append(["all", f"zero lost or duplicated log rows ({lost})", lost == 0])
    return comparisons, targets


RUN_COLUMNS = {
    "req/s": "rate", "p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "max": "max_ms",
    "errors": "errors", "achieved": "achieved_rps", "client lag p99": "client_lag_p99_ms",
}  # fmt: skip
ROLES = ["ingress", "proxy", "logger", "redis-server", "client", "driver", "controller", "raylet",
         "gcs_server", "ray other"]  # fmt: skip
LOG_COLUMNS = {"answered 200": "answered_200", "logged": "logged", "lost": "lost",
               "dup": "duplicates"}  # fmt: skip
VERDICT = {True: "PASS", False: "FAIL", None: "n/a"}


def measured(results: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(mode, app, run) of every measured rate, warm-ups left out."""
    return [
        (res["mode"], app, r)
        for res in results
        for app, entry in res["apps"].items()
        for r in entry["runs"]
        if not r.get("warmup")
    ]


def report(results: list[dict[str, Any]], payload: dict[str, Any], name: str) -> bool:
    """Print the tables, write the JSON; returns whether no target failed."""
    runs = measured(results)
    print_table(
        "Serve under open-loop load (latency from the due time, ms)",
        ["mode", "app", *RUN_COLUMNS, "cores (ours)", "cores (others)", "held"],
        [[m, a, *(r[k] for k in RUN_COLUMNS.values()), *r["cores_mine_others"],
          "yes" if held(r) else "no"] for m, a, r in runs],
    )  # fmt: skip
    print_table(
        "CPU ms per request by process (over each rate's interval, background work included)",
        ["mode", "app", "req/s", *ROLES, "total"],
        [[m, a, r["rate"], *(r["cpu_ms_per_request"].get(k) for k in ROLES),
          sum(r["cpu_ms_per_request"].values())] for m, a, r in runs],
    )  # fmt: skip
    comparisons, targets = verdicts(results)
    print_table(
        "full minus no-op p99 (ms)",
        ["mode", "req/s", "no-op p99", "full p99", "diff", "no-op held"],
        comparisons,
    )
    print_table(
        f"full app: log rows after a graceful delete; highest rate held (p99 < {P99_LIMIT_MS:g})",
        ["mode", *LOG_COLUMNS, "delete s", "no-op held", "full held", "full/no-op"],
        [[r["mode"], *(r["apps"]["full"]["log"][k] for k in LOG_COLUMNS.values()),
          r["apps"]["full"]["delete_s"], *r["highest_held"].values()] for r in results],
    )  # fmt: skip
    print_table(
        "targets", ["mode", "target", "result"], [[m, t, VERDICT[ok]] for m, t, ok in targets]
    )
    payload["targets"] = [{"mode": m, "target": t, "pass": ok} for m, t, ok in targets]
    print(f"results: {write_json(name, payload)}")
    return all(ok is not False for _, _, ok in targets)


# ----------------------------------------------------------------------------- main


def child(kind: str, root: Path, opts: argparse.Namespace, out: Path | None = None) -> None:
    """Run ``kind`` ('setup' or a mode) in a fresh interpreter with the mode's environment."""
    env = {**os.environ, **MODES.get(kind, {})}
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--data-root",
        str(root),
        "--rates",
        ",".join(f"{r:g}" for r in opts.rates),
        "--seconds",
        str(opts.seconds),
    ]
    if out is not None:
        cmd += ["--child-out", str(out)]
    if opts.profile:
        cmd += ["--profile", opts.profile]
    if opts.full_args:
        cmd += ["--full-args", opts.full_args]
    if opts.max_others is not None:
        cmd += ["--max-others", str(opts.max_others)]
    subprocess.run(cmd, env=env, check=True)


def _number(text: str) -> float | int:
    x = float(text)
    return int(x) if x.is_integer() else x


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="50,100,200,400", help="req/s, comma-separated")
    ap.add_argument("--seconds", type=float, default=20.0, help="per rate")
    ap.add_argument("--quick", action="store_true", help="rates 50,100 for 5 s each")
    ap.add_argument("--modes", default="default,lean", help=f"of {','.join(MODES)}")
    ap.add_argument("--data-root", help="reuse (or build once in) this data root")
    ap.add_argument(
        "--max-others",
        type=float,
        help="before each app, wait (up to 15 min) until other processes use under this many cores",
    )
    ap.add_argument(
        "--full-args", help="JSON merged into the full app's args, e.g. '{\"shadow\": null}'"
    )
    ap.add_argument("--profile", help="write py-spy speedscope profiles of each rate here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--client-spec", help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.quick:
        opts.rates, opts.seconds = "50,100", 5.0
    opts.rates = sorted(_number(r) for r in str(opts.rates).split(","))
    opts.modes = [m for m in opts.modes.split(",") if m]
    if unknown := set(opts.modes) - set(MODES):
        ap.error(f"unknown mode(s) {sorted(unknown)}; choose from {sorted(MODES)}")
    if opts.profile:
        Path(opts.profile).mkdir(parents=True, exist_ok=True)
        opts.profile = str(Path(opts.profile).resolve())
    return opts


def result_name(opts: argparse.Namespace) -> str:
    """``serve_load`` for the standard run; a partial or profiled one does not overwrite it."""
    if opts.quick:
        return "serve_load_quick"
    standard = opts.rates == [50, 100, 200, 400] and opts.seconds == 20 and len(opts.modes) == 2
    custom = opts.profile or opts.full_args
    return "serve_load" if standard and not custom else "serve_load_custom"


def main(argv: list[str] | None = None) -> None:
    opts = parse(argv)
    if opts.child:
        root = Path(opts.data_root or ".")
        if opts.child == "setup":
            setup_data(root)
        elif opts.child == "client":
            client_main(opts)
        else:
            Path(opts.child_out).write_text(json.dumps(run_mode(opts.child, root, opts)))
        return
    payload: dict[str, Any] = {
        "full_args": opts.full_args,
        "uptime_start": uptime(),
        "rates": opts.rates,
        "seconds": opts.seconds,
        "modes": opts.modes,
    }
    print(f"uptime: {payload['uptime_start']}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="serve-load-"))
    root = Path(opts.data_root).resolve() if opts.data_root else tmp / "data"
    try:
        if not (root / MARKER).exists():
            t0 = time.perf_counter()
            child("setup", root, opts)
            payload["setup_s"] = time.perf_counter() - t0
            print(f"setup: {payload['setup_s']:.0f} s", flush=True)
        results = []
        for mode in opts.modes:
            out = tmp / f"{mode}.json"
            child(mode, root, opts, out)
            results.append(json.loads(out.read_text()))
        payload["uptime_end"], payload["results"] = uptime(), results
        print(f"uptime: {payload['uptime_end']}")
        ok = report(results, payload, result_name(opts))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
