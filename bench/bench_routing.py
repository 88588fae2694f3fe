"""Agent-routing throughput on PostgreSQL: 10k leads, 500 agents, 20 rules.

Measures the real service path (`leads_distribute_pending`, what `manage.py
distribute_pending` and the sweeper run; and `lead_distribute`, what a worker runs per
arriving lead), its queries per lead, and `pgbench -N` with one client, so the figure can be
read against what this machine's PostgreSQL does per transaction. The two are interleaved —
pgbench, batch, pgbench, batch … (PAIRS pairs, each batch on a fresh seed) — and the ratio is
the median of the per-pair ratios, so a reading taken while the machine was busy with
something else does not decide it.

Usage: python bench/run.py routing   (BENCH_DATABASE_URL and BENCH_PGBENCH_DB: see
bench/run.py; the database is created, migrated and flushed).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import statistics
import subprocess
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import seeding

LEADS = 10_000
AGENTS = 500
RULES = 20
POOL_SIZE = 30  # 500 agents over 20 pools: 25 each, plus 5 shared with the next pool
SINGLE_LEADS = 500  # leads also routed one by one (the per-arrival worker path)
PGBENCH_SECONDS = 5  # per pair
PAIRS = 3


def _pgbench_db() -> str:
    """bench/run.py names it (BENCH_PGBENCH_DB); else the bench database's name + _pgbench."""
    from django.db import connection

    return os.environ.get("BENCH_PGBENCH_DB") or f"{connection.settings_dict['NAME']}_pgbench"


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    import django

    django.setup()  # idempotent once the app registry is ready


def _server_args() -> tuple[list[str], dict[str, str]]:
    from django.db import connection

    db = connection.settings_dict
    args = [
        "-h",
        db["HOST"] or "127.0.0.1",
        "-p",
        str(db["PORT"] or 5432),
        "-U",
        db["USER"] or "postgres",
    ]
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return args, env


def _build_setup() -> None:
    """500 agents in 20 overlapping pools of 30; 20 rules over 5 sources × 4 campaigns with
    a mix of strategies, caps and filters."""
    from leads.models import Campaign, Source

    users = seeding.seed_agents(AGENTS, named=True)
    sources = Source.objects.bulk_create(
        Source(slug=f"src{i}", name=f"Source {i}") for i in range(5)
    )
    campaigns = Campaign.objects.bulk_create(
        Campaign(slug=f"camp{i}", name=f"Campaign {i}") for i in range(4)
    )
    seeding.seed_pools_and_rules(
        users,
        sources,
        campaigns,
        rules=RULES,
        pool_size=POOL_SIZE,
        member=lambda pos: {
            "cap_day": 200 if pos % 5 else 40,
            "filters": [{"field": "country", "op": "ne", "value": "XX"}] if pos % 7 == 0 else [],
        },
        rule=lambda r, strategy: {
            "cap_week": 1000,
            "filters": [{"field": "company_size", "op": "gte", "value": 0}],
            "batch_size": 10 if strategy == "broadcast" else None,
            "claim_timeout": timedelta(minutes=15) if strategy == "broadcast" else None,
            "initial_activity": "new_lead" if r % 2 else "",
        },
    )


def _make_leads(n: int, offset: int = 0) -> None:
    from leads.models import Campaign, Lead, Source

    sources = list(Source.objects.order_by("slug"))
    campaigns = list(Campaign.objects.order_by("slug"))
    rows = []
    for i in range(offset, offset + n):
        r = i % RULES
        rows.append(
            Lead(
                source=sources[r % 5],
                campaign=campaigns[r % 4],
                first_name="Lead",
                last_name=str(i),
                email=f"lead{i}@bench.local",
                email_normalized=f"lead{i}@bench.local",
                country="NL",
                company_size=10 + i % 500,
                city="Utrecht",
            )
        )
    Lead.objects.bulk_create(rows, batch_size=2000)


def _pgbench_binaries() -> tuple[str, str] | None:
    binary = shutil.which("pgbench") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)), None
    )
    if binary is None:
        return None
    return binary, shutil.which("psql") or binary.replace("pgbench", "psql")


def _pgbench_init(binary: str, psql: str) -> None:
    """`pgbench -i -s 1` in its own database (created afresh)."""
    args, env = _server_args()
    db = _pgbench_db()
    for sql in (f'DROP DATABASE IF EXISTS "{db}"', f'CREATE DATABASE "{db}"'):
        subprocess.run(
            [psql, *args, "-d", "postgres", "-q", "-c", sql],
            env=env,
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [binary, *args, "-i", "-s", "1", "-q", db], env=env, check=True, capture_output=True
    )


def _pgbench_tps(binary: str) -> float | None:
    """`pgbench -N -c 1 -T PGBENCH_SECONDS`: single-client tx/s."""
    args, env = _server_args()
    out = subprocess.run(
        [binary, *args, "-N", "-c", "1", "-T", str(PGBENCH_SECONDS), _pgbench_db()],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    match = re.search(
        r"tps = ([\d.]+) \(without initial connection time\)", out.stdout
    ) or re.search(r"tps = ([\d.]+)", out.stdout)
    return float(match.group(1)) if match else None


def _fresh_seed() -> None:
    from django.core.management import call_command

    call_command("flush", verbosity=0, interactive=False)
    _build_setup()
    _make_leads(LEADS)


def _route_batch() -> tuple[float, int, dict[str, int]]:
    """Route every pending lead in batches: (seconds, queries, outcomes)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from distribution.services.queueing import leads_distribute_pending

    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        outcomes = leads_distribute_pending(trigger="command")
        seconds = time.perf_counter() - started
    return seconds, len(ctx), dict(outcomes)


def run() -> dict[str, Any]:
    """Set up; PAIRS × (pgbench, route 10k leads in batches); then 500 leads one by one."""
    _setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from distribution.services.distribute import lead_distribute
    from leads.models import Lead

    seeding.database_ready(flush=True)
    binaries = _pgbench_binaries()
    if binaries:
        _pgbench_init(*binaries)
    pairs: list[dict[str, Any]] = []
    for _ in range(PAIRS):
        _fresh_seed()
        tps = _pgbench_tps(binaries[0]) if binaries else None  # A
        seconds, queries, outcomes = _route_batch()  # B
        pair: dict[str, Any] = {
            "pgbench_tps": round(tps, 1) if tps else None,
            "batch_leads_per_s": round(LEADS / seconds, 1),
        }
        if tps:
            pair["ratio"] = round(LEADS / seconds / tps, 2)
        pairs.append(pair)

    _make_leads(SINGLE_LEADS, offset=LEADS)
    ids = list(
        Lead.objects.filter(distribution_state="pending")
        .order_by("id")
        .values_list("id", flat=True)
    )
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        for lead_id in ids:
            lead_distribute(lead_id=lead_id, trigger="arrival")
        single_seconds = time.perf_counter() - started
    single_queries = len(ctx)

    owners = Counter(Lead.objects.exclude(owner=None).values_list("owner_id", flat=True))
    batch_rates = [pair["batch_leads_per_s"] for pair in pairs]
    figures: dict[str, Any] = {
        "leads": LEADS,
        "agents": AGENTS,
        "rules": RULES,
        "pool_size": POOL_SIZE,
        "pairs": pairs,
        "batch_leads_per_s": statistics.median(batch_rates),
        "batch_queries_per_lead": round(queries / LEADS, 3),
        "single_leads": len(ids),
        "single_leads_per_s": round(len(ids) / single_seconds, 1),
        "single_queries_per_lead": round(single_queries / max(len(ids), 1), 2),
        "outcomes": outcomes,
        "agents_with_leads": len(owners),
        "pgbench_binary": binaries[0] if binaries else "pgbench not found",
    }
    ratios = [pair["ratio"] for pair in pairs if "ratio" in pair]
    if ratios:
        tps_median = statistics.median(pair["pgbench_tps"] for pair in pairs)
        figures["pgbench_tps"] = tps_median
        figures["ratio_batch_vs_pgbench"] = statistics.median(ratios)  # median of the pairs
        figures["ratio_batch_vs_pgbench_pairs"] = ratios
        figures["ratio_single_vs_pgbench"] = round(figures["single_leads_per_s"] / tps_median, 2)
    return figures


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import run as harness  # names and drops the run's databases

    raise SystemExit(harness.main(["routing"]))
