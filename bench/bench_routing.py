"""Agent-routing throughput on PostgreSQL: 10k leads, 500 agents, 20 rules.

Measures the real service path (`leads_distribute_pending`, what `manage.py
distribute_pending` and the sweeper run; and `lead_distribute`, what a worker runs per
arriving lead), its queries per lead, and — in the same run — `pgbench -N` with one client,
so the figure can be read against what this machine's PostgreSQL does per transaction.

Usage: python bench/run.py routing   (DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/leadrouter_bench; it is created, migrated and flushed).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
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
PGBENCH_DB = "leadrouter_pgbench"
PGBENCH_SECONDS = 10


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


def _pgbench() -> dict[str, Any]:
    """`pgbench -i -s 1` in its own database, then `-N -c 1 -T 10`: single-client tx/s."""
    binary = shutil.which("pgbench") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)), None
    )
    if binary is None:
        return {"pgbench_error": "pgbench not found"}
    args, env = _server_args()
    psql = shutil.which("psql") or binary.replace("pgbench", "psql")
    subprocess.run(
        [psql, *args, "-d", "postgres", "-q", "-c", f'DROP DATABASE IF EXISTS "{PGBENCH_DB}"'],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [psql, *args, "-d", "postgres", "-q", "-c", f'CREATE DATABASE "{PGBENCH_DB}"'],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [binary, *args, "-i", "-s", "1", "-q", PGBENCH_DB], env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        [binary, *args, "-N", "-c", "1", "-T", str(PGBENCH_SECONDS), PGBENCH_DB],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    match = re.search(
        r"tps = ([\d.]+) \(without initial connection time\)", out.stdout
    ) or re.search(r"tps = ([\d.]+)", out.stdout)
    return {"pgbench_tps": float(match.group(1)) if match else None, "pgbench_binary": binary}


def run() -> dict[str, Any]:
    """Set up, route 10k leads in batches and 500 one by one, then run pgbench."""
    _setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from distribution.services.distribute import lead_distribute
    from distribution.services.queueing import leads_distribute_pending
    from leads.models import Lead

    seeding.database_ready(flush=True)
    _build_setup()
    _make_leads(LEADS)

    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        outcomes = leads_distribute_pending(trigger="command")
        batch_seconds = time.perf_counter() - started
    batch_queries = len(ctx)

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
    figures: dict[str, Any] = {
        "leads": LEADS,
        "agents": AGENTS,
        "rules": RULES,
        "pool_size": POOL_SIZE,
        "batch_leads_per_s": round(LEADS / batch_seconds, 1),
        "batch_seconds": round(batch_seconds, 2),
        "batch_queries_per_lead": round(batch_queries / LEADS, 3),
        "single_leads": len(ids),
        "single_leads_per_s": round(len(ids) / single_seconds, 1),
        "single_queries_per_lead": round(single_queries / max(len(ids), 1), 2),
        "outcomes": dict(outcomes),
        "agents_with_leads": len(owners),
    }
    figures.update(_pgbench())
    tps = figures.get("pgbench_tps")
    if tps:
        figures["ratio_batch_vs_pgbench"] = round(figures["batch_leads_per_s"] / tps, 2)
        figures["ratio_single_vs_pgbench"] = round(figures["single_leads_per_s"] / tps, 2)
    return figures


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(json.dumps(run(), indent=2))
