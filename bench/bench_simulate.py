"""Simulate over a week of leads on PostgreSQL: 100k leads, 300 agents, 10 rules.

Times what `manage.py simulate --days 7 --json` does, through the service (`Simulation`, its
decisions streamed and encoded as the command prints them), its peak memory and the leads
replayed, and — in the same run, in the same process — the reference: reading the same rows
in the same chunks and doing nothing with them. The replay runs in a fresh process, so its
peak RSS is the replay's and not the seeding's (VmHWM; getrusage's figure is shown beside it).

Usage: python bench/run.py simulate   (DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/leadrouter_bench; it is created, migrated and flushed).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import seeding

LEADS = int(os.environ.get("BENCH_SIMULATE_LEADS", 100_000))
DAYS = 7
AGENTS = 300
RULES = 10
POOL_SIZE = 30  # 300 agents over 10 pools: 27 each, plus 3 shared with the next pool
ROOT = Path(__file__).resolve().parent.parent


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    import django

    django.setup()


def _seed() -> None:
    """Agents in overlapping pools, rules of several strategies with day caps (a sticky
    one among them), an automation, and LEADS leads spread evenly over the last DAYS days."""
    from django.db import connection
    from django.utils import timezone

    from distribution.models import Automation
    from leads.models import Campaign, Lead, Source

    users = seeding.seed_agents(AGENTS)
    sources = Source.objects.bulk_create(Source(slug=f"src{i}", name=f"S{i}") for i in range(5))
    campaigns = Campaign.objects.bulk_create(
        Campaign(slug=f"camp{i}", name=f"C{i}") for i in range(2)
    )
    offers = {"batch_size": 10, "claim_timeout": timedelta(minutes=15)}
    seeding.seed_pools_and_rules(
        users,
        sources,
        campaigns,
        rules=RULES,
        pool_size=POOL_SIZE,
        member=lambda pos: {"cap_day": 40 if pos % 5 else 10},
        rule=lambda r, strategy: {
            "cap_week": 150,
            "filters": [{"field": "company_size", "op": "gte", "value": r * 10}],
            "sticky_owner": r == 0,
            **(offers if strategy == "broadcast" else {}),
        },
    )
    Automation.objects.create(
        name="globex",
        trigger="created",
        action="user",
        target_user=users[1],
        filters=[{"field": "company_name", "op": "eq", "value": "Globex"}],
    )
    # already distributed once (a replay does not care): unassigned, done
    common = {"first_name": "Lead", "country": "NL", "status": "unassigned"}
    common["distribution_state"] = "done"
    Lead.objects.bulk_create(
        (
            Lead(
                source=sources[i % 5],
                campaign=campaigns[i % 2],
                last_name=str(i),
                email=(email := f"lead{i}@bench.local"),
                email_normalized=email,
                company_size=i % 120,
                company_name="Globex" if i % 500 == 0 else "Initech",
                **common,
            )
            for i in range(LEADS)
        ),
        batch_size=5000,
    )
    # spread evenly over the week before now, in id order (created_at is auto_now_add)
    step = timedelta(days=DAYS) / LEADS
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE leads_lead SET created_at = %s + (id - (SELECT min(id) FROM leads_lead)) "
            "* %s::interval",
            [timezone.now() - timedelta(days=DAYS) + step, f"{step.total_seconds()} seconds"],
        )
        cursor.execute("ANALYZE leads_lead")


def _rss_mb() -> float:
    """This process's peak RSS: the kernel's high-water mark of its own memory (VmHWM),
    else getrusage's ru_maxrss — which on Linux starts at the launching process's peak."""
    try:
        status = Path("/proc/self/status").read_text()
        return round(int(status.split("VmHWM:")[1].split()[0]) / 1024, 1)  # kB
    except (OSError, IndexError, ValueError):
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB


def replay() -> dict[str, Any]:
    """In this (fresh) process: read the rows, then replay them as `simulate --json` does."""
    _django()
    from distribution.services.simulate import Simulation, replay_chunks

    baseline = _rss_mb()
    simulation = Simulation(days=DAYS)
    started = time.perf_counter()
    rows = sum(len(chunk) for chunk in replay_chunks(simulation.leads, limit=None))
    read_seconds = time.perf_counter() - started
    read_rss = _rss_mb()
    n = owned = 0
    with open(os.devnull, "w") as sink:
        started, cpu = time.perf_counter(), time.process_time()
        for decision in simulation.decisions():
            n += 1
            sink.write(json.dumps(decision, default=str))
            owned += decision["owner"] is not None
        sink.write(json.dumps(simulation.totals()))
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return {
        "leads_replayed": n,
        "leads_with_an_owner": owned,
        "simulate_seconds": round(seconds, 2),
        "simulate_leads_per_s": round(n / seconds, 1),
        "simulate_cpu_seconds": round(cpu, 2),  # this process's: the machine may be shared
        "peak_rss_mb": _rss_mb(),
        "peak_rss_getrusage_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        "rss_before_mb": baseline,
        "rss_after_reading_mb": read_rss,
        "read_same_rows_seconds": round(read_seconds, 2),
        "rows_read": rows,
        "ratio_simulate_vs_read": round(seconds / read_seconds, 1),
    }


def run() -> dict[str, Any]:
    """Seed, then replay in a fresh process."""
    _django()
    seeding.database_ready(flush=True)
    started = time.perf_counter()
    _seed()
    seeded = time.perf_counter() - started
    out = subprocess.run(
        [sys.executable, __file__, "--replay"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"]},
    )
    figures: dict[str, Any] = {"leads": LEADS, "days": DAYS, "agents": AGENTS, "rules": RULES}
    figures.update(json.loads(out.stdout.strip().splitlines()[-1]))
    figures["seed_seconds"] = round(seeded, 1)
    return figures


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(replay() if "--replay" in sys.argv else run()))
