"""The live path, each figure beside its reference in the same run (issue 10):

1. POST -> assigned at a steady RATE leads/s (open loop: a schedule of send times, so a slow
   answer never slows the rate) for SECONDS, through gunicorn (`-w 2`), Redis and a real
   Celery worker on the `live` lane (goal p50 <= 30 ms, p99 <= 100 ms). Latency of a lead =
   its Assignment's created_at minus its scheduled send time. The reference, interleaved
   A B A B: the same rate through a minimal HTTP -> Redis -> UPDATE pipeline (`/bench/push`
   LPUSHes, a consumer thread here BRPOPs and UPDATEs a row, stamping it with now()).
2. The same while `import_leads` stores and a bulk worker distributes a 20,000-row CSV
   (goal p99 <= 1 s).
3. 100 agents claiming one broadcast lead at once (`POST /api/v1/offers/{id}/claim`, each
   its own token): the winner's and the 409s' latency (goal p99 <= 50 ms) beside 100
   concurrent trivial requests to the same gunicorn, rounds interleaved.

Its own database (`leadrouter_bench_live_<pid>`, created, migrated, dropped), Redis db
BENCH_LIVE_REDIS_URL (default redis://127.0.0.1:6379/11) under a key prefix of the run's
own (removed at the end). Usage: python bench/run.py live
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_ingest import _database_url, _free_port, _manage, _sql

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RATE = int(os.environ.get("BENCH_LIVE_RATE", "100"))
SECONDS = int(os.environ.get("BENCH_LIVE_SECONDS", "20"))
PAIRS = int(os.environ.get("BENCH_LIVE_PAIRS", "2"))
IMPORT_ROWS = int(os.environ.get("BENCH_LIVE_IMPORT_ROWS", "20000"))
CLAIMERS = 100
RACE_ROUNDS = int(os.environ.get("BENCH_LIVE_RACE_ROUNDS", "3"))
REDIS_URL = os.environ.get("BENCH_LIVE_REDIS_URL", "redis://127.0.0.1:6379/11")
SOURCE_TOKEN = "bench-live-source"
RACE_TOKEN = "bench-live-race"
WAIT = 60.0  # seconds at most for the last leads of a phase to be assigned (never reached)

SEED = f"""
from accounts.models import AgentProfile, User
from accounts.tokens import hash_token
from distribution.models import Pool, PoolMember, Rule
from leads.models import Campaign, Source

def source(slug, token=None):
    return Source.objects.create(slug=slug, name=slug,
        token_hash=hash_token(token) if token else None, active=True)

def pool(name, n, token_prefix=None):
    users = [User.objects.create(username=f"{{name}}{{i}}@bench.local",
        email=f"{{name}}{{i}}@bench.local") for i in range(n)]
    for i, u in enumerate(users):
        AgentProfile.objects.create(user=u, available=True,
            api_token_hash=hash_token(f"{{token_prefix}}-{{i}}") if token_prefix else None)
    p = Pool.objects.create(name=name)
    PoolMember.objects.bulk_create(
        PoolMember(pool=p, agent=u, position=i) for i, u in enumerate(users))
    return p

Campaign.objects.create(slug="live", name="Live")
for slug, token, name, n, strategy, prefix in [
    ("live", "{SOURCE_TOKEN}", "live", 20, "round_robin", None),
    ("import", None, "bulk", 20, "round_robin", None),
    ("race", "{RACE_TOKEN}", "race", {CLAIMERS}, "broadcast", "bench-live-agent"),
]:
    rule = Rule.objects.create(name=name, priority=10, enabled=True, strategy=strategy,
        pool=pool(name, n, prefix))
    rule.sources.set([source(slug, token)])
"""


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile Q (0..1) of VALUES, in milliseconds rounded to 0.1."""
    ordered = sorted(values)
    return round(ordered[max(math.ceil(q * len(ordered)) - 1, 0)] * 1000, 1)


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": _percentile(values, 0.5),
        "p99_ms": _percentile(values, 0.99),
    }


class Http:
    """One request a connection (gunicorn's sync workers close it anyway)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def _open_loop(send: Callable[[int], int], n: int, rate: float) -> tuple[list[float], Counter]:
    """Send N requests at RATE a second on a fixed schedule (threads, so a slow answer never
    delays the next send); the scheduled send times (epoch seconds) and the statuses."""
    start = time.time() + 0.2
    schedule = [start + i / rate for i in range(n)]
    with ThreadPoolExecutor(max_workers=64) as pool:
        futures = []
        for i, at in enumerate(schedule):
            delay = at - time.time()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(send, i))
        statuses = Counter(f.result() for f in futures)
    return schedule, statuses


def _wait_until(check: Callable[[], bool], what: str, limit: float = WAIT) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {limit:.0f} s")
        time.sleep(0.2)


class Run:
    """The run's database, Redis prefix, gunicorn and workers; the phases as methods."""

    def __init__(self) -> None:
        self.name = f"leadrouter_bench_live_{os.getpid()}"
        self.url = _database_url(self.name)
        self.prefix = f"bench-live-{os.getpid()}:"
        self.env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        self.env.update(
            DATABASE_URL=self.url,
            BENCH_DATABASE_URL=self.url,
            BENCH_LIVE_BROKER_URL=REDIS_URL,
            BROKER_KEY_PREFIX=self.prefix,
            DJANGO_SETTINGS_MODULE="live_settings",
            PYTHONPATH=os.pathsep.join([str(ROOT), str(BENCH)]),
            CELERY_TASK_ALWAYS_EAGER="false",
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs = Path(tempfile.mkdtemp(prefix="bench-live-"))
        self.port = _free_port()
        self.http = Http(self.port)
        self.phase = 0

    # --- processes ----------------------------------------------------------------------
    def _spawn(self, name: str, *cmd: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        admin = _database_url("postgres")
        _sql(admin, f'DROP DATABASE IF EXISTS "{self.name}"')
        _sql(admin, f'CREATE DATABASE "{self.name}"')
        _manage(ROOT, self.env, "migrate", "--verbosity", "0")
        _manage(ROOT, self.env, "shell", "-c", SEED)
        _sql(self.url, "CREATE TABLE bench_ref (id int PRIMARY KEY, done_at timestamptz)")
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
        self._spawn(
            "gunicorn",
            gunicorn,
            "config.wsgi",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warning",
        )
        celery = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        # as docker-compose runs them (scaled to this machine): a live lane of its own, the
        # timers, bulk and default queues in another
        self._spawn("worker-live", *celery, "-Q", "live", "--concurrency=2", "--hostname=live@%h")
        self._spawn(
            "worker-bulk",
            *celery,
            "-Q",
            "timers,bulk,celery",
            "--concurrency=1",
            "--hostname=bulk@%h",
        )
        _wait_until(self._serving, "gunicorn answering", 30)
        _wait_until(self._workers_consuming, "the workers consuming", 60)

    def _serving(self) -> bool:
        try:
            return self.http.request("GET", "/bench/trivial")[0] == 200
        except OSError:
            return False

    def _workers_consuming(self) -> bool:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a process of the run exited; logs in {self.logs}")
        # a lead posted now is assigned once the live worker consumes
        self.phase += 1
        self._post_lead(f"warm{self.phase}", 0)
        with contextlib.suppress(RuntimeError):
            _wait_until(lambda: self._assigned(f"warm{self.phase}") == 1, "warm-up lead", 5)
            return True
        return False

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        import redis

        broker = redis.Redis.from_url(REDIS_URL)
        keys = list(broker.scan_iter(match=f"{self.prefix}*", count=1000))
        if keys:
            broker.delete(*keys)
        _sql(_database_url("postgres"), f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        shutil.rmtree(self.logs, ignore_errors=True)

    # --- the online path ----------------------------------------------------------------
    def _post_lead(self, tag: str, i: int, token: str = SOURCE_TOKEN) -> int:
        body = {
            "first_name": "Live",
            "last_name": "Bench",
            "email": f"{tag}-{i}@example.com",
            "external_id": f"{tag}-{i}",
            "campaign": "live",
            "country": "NL",
        }
        return self.http.request("POST", "/api/v1/leads", body, token)[0]

    def _assigned(self, tag: str) -> int:
        return int(
            _sql(
                self.url,
                f"""SELECT count(*) FROM leads_lead l
            WHERE l.external_id LIKE '{tag}-%%' AND EXISTS
            (SELECT 1 FROM distribution_assignment a WHERE a.lead_id = l.id)""".replace("%%", "%"),
            )[0]
        )

    def live_phase(self) -> dict[str, Any]:
        """RATE leads/s for SECONDS: POST -> assigned per lead."""
        self.phase += 1
        tag = f"live{self.phase}"
        n = RATE * SECONDS
        schedule, statuses = _open_loop(lambda i: self._post_lead(tag, i), n, RATE)
        with contextlib.suppress(RuntimeError):
            _wait_until(lambda: self._assigned(tag) >= n, f"{n} leads assigned")
        import psycopg

        with psycopg.connect(self.url) as conn:
            rows = conn.execute(
                """SELECT l.external_id, EXTRACT(EPOCH FROM min(a.created_at))
                FROM leads_lead l JOIN distribution_assignment a ON a.lead_id = l.id
                WHERE l.external_id LIKE %s GROUP BY l.external_id""",
                [f"{tag}-%"],
            ).fetchall()
        latencies = [float(at) - schedule[int(ext.rpartition("-")[2])] for ext, at in rows]
        # leads assigned a second, first send to last assignment: below RATE, the path is
        # saturated and the latency is the queue's growth, not one lead's way through
        last = max((float(at) for _, at in rows), default=schedule[0])
        return {
            **_summary(latencies),
            "statuses": dict(statuses),
            "assigned": len(rows),
            "assigned_per_s": round(len(rows) / max(last - schedule[0], 1e-9), 1),
        }

    def reference_phase(self) -> dict[str, Any]:
        """The same rate through HTTP -> LPUSH -> (consumer) BRPOP -> UPDATE."""
        import psycopg
        import redis

        n = RATE * SECONDS
        key = f"{self.prefix}bench-ref"
        _sql(self.url, "TRUNCATE bench_ref")
        _sql(self.url, f"INSERT INTO bench_ref (id) SELECT generate_series(0, {n - 1})")
        done = threading.Event()

        def consume() -> None:
            broker = redis.Redis.from_url(REDIS_URL)
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not done.is_set():
                    item = broker.brpop([key], timeout=1)
                    if item:
                        conn.execute(
                            "UPDATE bench_ref SET done_at = now() WHERE id = %s", [int(item[1])]
                        )

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        schedule, statuses = _open_loop(
            lambda i: self.http.request("POST", "/bench/push", {"id": i})[0], n, RATE
        )
        count = "SELECT count(*) FROM bench_ref WHERE done_at IS NOT NULL"
        with contextlib.suppress(RuntimeError):
            _wait_until(lambda: _sql(self.url, count)[0] >= n, "the reference rows updated")
        done.set()
        consumer.join(timeout=5)
        with psycopg.connect(self.url) as conn:
            rows = conn.execute(
                "SELECT id, EXTRACT(EPOCH FROM done_at) FROM bench_ref WHERE done_at IS NOT NULL"
            ).fetchall()
        latencies = [float(at) - schedule[i] for i, at in rows]
        return {**_summary(latencies), "statuses": dict(statuses)}

    @contextlib.contextmanager
    def importing(self, rows: int) -> Iterator[dict[str, Any]]:
        """A `import_leads` of ROWS rows running (its leads distributed by the bulk worker)."""
        path = self.logs / "import.csv"
        with path.open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["first_name", "last_name", "email", "external_id", "country"])
            out.writerows(
                ["Bulk", "Import", f"imp-{i}@example.com", f"imp-{i}", "NL"] for i in range(rows)
            )
        started = time.monotonic()
        proc = self._spawn(
            "import",
            sys.executable,
            "manage.py",
            "import_leads",
            str(path),
            "--source",
            "import",
            "--campaign",
            "live",
        )
        count = "SELECT count(*) FROM leads_lead WHERE external_id LIKE 'imp-%'"
        _wait_until(
            lambda: _sql(self.url, count)[0] > 0 or proc.poll() is not None,
            "the import storing rows",
        )
        info: dict[str, Any] = {"rows": rows, "stored_at_start": _sql(self.url, count)[0]}
        yield info
        info["stored_at_end"] = _sql(self.url, count)[0]
        info["still_running_at_end"] = proc.poll() is None
        info["import_seconds"] = round(time.monotonic() - started, 1)
        if proc.poll() is None:  # the window is measured; the rest of the import is not needed
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        info["import_exit"] = proc.returncode

    # --- the claim race -----------------------------------------------------------------
    def _burst(self, requests: list[Callable[[], int]]) -> list[tuple[int, float]]:
        """Run REQUESTS at once (a barrier releases them together): status, seconds."""
        barrier = threading.Barrier(len(requests))

        def one(request: Callable[[], int]) -> tuple[int, float]:
            barrier.wait()
            started = time.perf_counter()
            status = request()
            return status, time.perf_counter() - started

        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            return list(pool.map(one, requests))

    def race_round(self, r: int) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        trivial = self._burst([lambda: self.http.request("GET", "/bench/trivial")[0]] * CLAIMERS)
        tag = f"race{r}"
        assert self._post_lead(tag, 0, RACE_TOKEN) == 201
        offers_sql = f"""SELECT count(*) FROM distribution_offer o JOIN leads_lead l
            ON l.id = o.lead_id WHERE l.external_id = '{tag}-0'"""
        _wait_until(lambda: _sql(self.url, offers_sql)[0] >= CLAIMERS, "the broadcast offers")
        import psycopg

        with psycopg.connect(self.url) as conn:
            offers = conn.execute(
                """SELECT u.username, o.id FROM distribution_offer o
                JOIN leads_lead l ON l.id = o.lead_id JOIN accounts_user u ON u.id = o.agent_id
                WHERE l.external_id = %s""",
                [f"{tag}-0"],
            ).fetchall()

        def claim(username: str, offer: int) -> Callable[[], int]:
            index = int(username.removeprefix("race").partition("@")[0])
            token = f"bench-live-agent-{index}"
            return lambda: self.http.request("POST", f"/api/v1/offers/{offer}/claim", None, token)[
                0
            ]

        claims = self._burst([claim(u, o) for u, o in offers])
        return trivial, claims


def run() -> dict[str, Any]:
    live = Run()
    figures: dict[str, Any] = {"rate_per_s": RATE, "seconds_each": SECONDS, "pairs": PAIRS}
    try:
        live.start()
        refs, posts = [], []
        for _ in range(PAIRS):  # A B A B
            refs.append(live.reference_phase())
            posts.append(live.live_phase())
        with live.importing(IMPORT_ROWS) as info:
            during = live.live_phase()
        trivial: list[float] = []
        winners: list[float] = []
        losers: list[float] = []
        statuses: Counter = Counter()
        for r in range(RACE_ROUNDS):
            ref, claims = live.race_round(r)
            trivial += [t for _, t in ref]
            statuses.update(s for s, _ in claims)
            winners += [t for s, t in claims if s == 200]
            losers += [t for s, t in claims if s == 409]
    finally:
        live.stop()

    def pooled(key: str, phases: list[dict[str, Any]]) -> float:
        return statistics.median(p[key] for p in phases)

    figures.update(
        ref_p50_ms=pooled("p50_ms", refs),
        ref_p99_ms=pooled("p99_ms", refs),
        live_p50_ms=pooled("p50_ms", posts),
        live_p99_ms=pooled("p99_ms", posts),
        live_assigned_per_s=pooled("assigned_per_s", posts),
        import_live_p50_ms=during["p50_ms"],
        import_live_p99_ms=during["p99_ms"],
        import_live_assigned_per_s=during["assigned_per_s"],
        import_still_running_at_end=info["still_running_at_end"],
        import_seconds=info["import_seconds"],
        race_rounds=RACE_ROUNDS,
        race_trivial_p50_ms=_summary(trivial)["p50_ms"],
        race_trivial_p99_ms=_summary(trivial)["p99_ms"],
        race_409_p50_ms=_summary(losers)["p50_ms"],
        race_409_p99_ms=_summary(losers)["p99_ms"],
        race_winner_max_ms=round(max(winners) * 1000, 1) if winners else None,
        race_statuses=json.dumps(dict(statuses)),
        goal_live_p50_le_30ms=pooled("p50_ms", posts) <= 30,
        goal_live_p99_le_100ms=pooled("p99_ms", posts) <= 100,
        goal_import_p99_le_1s=during["p99_ms"] <= 1000,
        goal_race_409_p99_le_50ms=_summary(losers)["p99_ms"] <= 50,
        reference_phases=refs,
        live_phases=posts,
        import_phase={**during, **info},
        race_winners_ms=[round(w * 1000, 1) for w in winners],
    )
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    print(json.dumps(run(), indent=2, default=str))
