"""Marketplace benchmark: contract selection latency at 10,000 contracts, and batch-optimal
turnover against greedy arrival order and the LP upper bound on a capped instance.

1. Engine only: `select_contracts` for one lead against 10,000 in-memory contract snapshots,
   compiled once into a `ContractTable` (what the services keep per campaign), and for
   comparison as the plain sequence (contract-by-contract eligibility).
2. Full service path: `lead_distribute_marketplace` on PostgreSQL with the same 10,000
   contracts: the per-process compiled contracts refreshed with the sales made since, the
   engine, locking and exactly re-checking the chosen contracts (together: the selection
   latency), then outbound leads, status, events and history (the whole sale).
3. Batch: 5,000 leads × 300 capped local contracts (radius 15–45 km around clustered
   cities, about as many cap slots as wanted outbound leads, max multiplication 2) —
   `greedy_in_arrival_order`, `optimise_batch` (HiGHS MILP) and `lp_upper_bound`.

The 10,000 contracts of 1 and 2 lie in one campaign over the Netherlands, half of them
capped, in two instances: "harsh" — 40 % without a radius (nationwide: candidates for every
lead, so no area test can rule them out), the rest 20–120 km; "regional" — 5 %
nationwide, the rest 15–60 km.

Run through the harness: `python bench/run.py marketplace` (settings config.settings.bench,
DATABASE_URL default postgres://postgres@127.0.0.1:5432/leadrouter_bench).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import seeding

ROOT = Path(__file__).resolve().parent.parent
REGION = (50.8, 53.5, 3.4, 7.2)  # lat min/max, lon min/max: roughly the Netherlands
N_CONTRACTS = 10_000
N_LEADS_LATENCY = 200
N_SERVICE_LEADS = 300
BATCH_LEADS = 5_000
BATCH_CONTRACTS = 300
BATCH_TIME_LIMIT = 120.0
PREFIX = "bench-mkt"


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    import django

    django.setup()


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(values), 3),
        "p50": round(ordered[len(ordered) // 2], 3),
        "p95": round(ordered[int(len(ordered) * 0.95) - 1], 3),
        "max": round(ordered[-1], 3),
    }


# --------------------------------------------------------------------------- instances


# Instances of parts 1 and 2: share of nationwide contracts (no radius), radius range.
INSTANCES = {"harsh": (0.4, (20, 120)), "regional": (0.05, (15, 60))}


def _contract_specs(n: int, rng: random.Random, instance: str = "harsh") -> list[dict[str, Any]]:
    nationwide, (r0, r1) = INSTANCES[instance]
    lat0, lat1, lon0, lon1 = REGION
    specs = []
    for i in range(n):
        capped = rng.random() < 0.5
        specs.append(
            {
                "i": i,
                "price": Decimal(rng.randint(5, 60)),
                "quality_score": float(rng.randint(1, 10)),
                "max_share_count": rng.choice([1, 2, 3, 3, 5]),
                "radius_km": None if rng.random() < nationwide else float(rng.randint(r0, r1)),
                "trial": rng.random() < 0.05,
                "paused": rng.random() < 0.03,
                "cap_day": rng.randint(10, 50) if capped else None,
                "budget_month": Decimal(rng.randint(500, 5000)) if rng.random() < 0.1 else None,
                "locations": [
                    (rng.uniform(lat0, lat1), rng.uniform(lon0, lon1))
                    for _ in range(rng.choice([1, 1, 2, 3]))
                ],
            }
        )
    return specs


def _lead_point(rng: random.Random) -> tuple[float, float]:
    lat0, lat1, lon0, lon1 = REGION
    return rng.uniform(lat0, lat1), rng.uniform(lon0, lon1)


CITIES = [
    (52.37, 4.90),
    (51.92, 4.48),
    (52.09, 5.12),
    (51.44, 5.47),
    (53.22, 6.57),
    (52.22, 6.89),
    (51.81, 5.84),
]


def _city_point(rng: random.Random) -> tuple[float, float]:
    """Mostly near a city (where leads and buyers cluster), sometimes anywhere."""
    if rng.random() < 0.3:
        return _lead_point(rng)
    lat, lon = rng.choice(CITIES)
    return lat + rng.gauss(0, 0.12), lon + rng.gauss(0, 0.18)


def _snapshots(
    specs: list[dict[str, Any]], now: datetime, rng: random.Random, *, used_fraction: float = 0.3
) -> list[Any]:
    from distribution.engine import marketplace as engine

    out = []
    for s in specs:
        cap = s["cap_day"]
        used = engine.CapUsage(day=int(cap * used_fraction * rng.random()) if cap else 0)
        out.append(
            engine.ContractSnapshot(
                id=s["i"] + 1,
                company_id=s["i"] + 1,
                campaign="1",
                price=s["price"],
                max_share_count=s["max_share_count"],
                created_at=now - timedelta(days=30),
                name=f"c{s['i']}",
                quality_score=s["quality_score"],
                trial=s["trial"],
                paused=s["paused"],
                radius_km=s["radius_km"],
                locations=tuple(engine.LocationPoint(a, b) for a, b in s["locations"]),
                caps=engine.CapLimits(day=cap, month_budget=s["budget_month"]),
                used=used,
                last_outbound_at=now - timedelta(minutes=rng.randint(1, 10_000)),
            )
        )
    return out


def _workflow() -> Any:
    from distribution.engine import marketplace as engine

    mode = engine.SelectionMode
    return engine.WorkflowSnapshot(
        max_multiplication=3,
        min_contracts=1,
        rules=(
            engine.SelectionRuleSnapshot(position=1, mode=mode.QS, take=1),
            engine.SelectionRuleSnapshot(position=2, mode=mode.TURNOVER, take=2),
            engine.SelectionRuleSnapshot(position=3, mode=mode.FREE_TRIAL, take=1),
        ),
    )


# --------------------------------------------------------------------------- 1. engine


def bench_engine(now: datetime, instance: str = "harsh") -> dict[str, Any]:
    """`select_contracts` per lead against 10,000 contracts (snapshots built once)."""
    from distribution.engine import marketplace as engine

    rng = random.Random(1)
    started = time.perf_counter()
    contracts = _snapshots(_contract_specs(N_CONTRACTS, rng, instance), now, rng)
    build_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    table = engine.ContractTable(contracts)
    compile_ms = (time.perf_counter() - started) * 1000
    workflow = _workflow()
    times, plain_times, explain_times, chosen = [], [], [], []
    for n in range(N_LEADS_LATENCY):
        lat, lon = _lead_point(rng)
        lead = engine.InboundLeadSnapshot(
            id=n + 1, campaign="1", created_at=now, latitude=lat, longitude=lon
        )
        t = time.perf_counter()
        decision = engine.select_contracts(lead, table, workflow, now, random.Random(n))
        times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        decision.explanation.head(100)  # what the service stores, and the summary counts
        decision.explanation.reason_counts()
        explain_times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        plain = engine.select_contracts(lead, contracts, workflow, now, random.Random(n))
        plain_times.append((time.perf_counter() - t) * 1000)
        if plain.chosen != decision.chosen:
            raise AssertionError(f"lead {n}: the compiled table chose differently")
        chosen.append(len(decision.chosen))
    return {
        "contracts": N_CONTRACTS,
        "leads": N_LEADS_LATENCY,
        "snapshot_build_ms_once": round(build_ms, 1),
        "table_compile_ms_once": round(compile_ms, 1),
        "select_ms": _ms(times),
        "explanation_ms": _ms(explain_times),
        "select_ms_uncompiled": _ms(plain_times),
        "mean_chosen": round(statistics.fmean(chosen), 2),
    }


# --------------------------------------------------------------------------- 2. service


def _seed_database(now: datetime, instance: str) -> Any:
    """10,000 contracts (each with its own company and locations) on a fresh campaign."""
    from crm.models import Company, Contract, Location
    from distribution.models import DistributionAttempt, OutboundLead, SelectionRule, Workflow
    from leads.models import Campaign, Lead

    old = Campaign.objects.filter(slug__startswith=PREFIX)
    OutboundLead.objects.filter(lead__campaign__in=old).delete()
    DistributionAttempt.objects.filter(lead__campaign__in=old).delete()
    Lead.objects.filter(campaign__in=old).delete()
    Contract.objects.filter(campaign__in=old).delete()
    Company.objects.filter(name__startswith=PREFIX).delete()
    Workflow.objects.filter(campaign__in=old).delete()
    old.delete()
    tag = f"{PREFIX}-{int(time.time())}"
    campaign = Campaign.objects.create(slug=tag, name=tag)
    workflow = Workflow.objects.create(
        campaign=campaign, mode="on_arrival", max_multiplication=3, min_contracts=1
    )
    SelectionRule.objects.bulk_create(
        [
            SelectionRule(workflow=workflow, position=1, mode="qs", take=1),
            SelectionRule(workflow=workflow, position=2, mode="turnover", take=2),
            SelectionRule(workflow=workflow, position=3, mode="free_trial", take=1),
        ]
    )
    rng = random.Random(1)
    specs = _contract_specs(N_CONTRACTS, rng, instance)
    companies = Company.objects.bulk_create(
        [Company(name=f"{tag}-company-{s['i']}") for s in specs], batch_size=2000
    )
    Location.objects.bulk_create(
        [
            Location(company=c, name=f"site {k}", latitude=a, longitude=b)
            for c, s in zip(companies, specs, strict=True)
            for k, (a, b) in enumerate(s["locations"])
        ],
        batch_size=2000,
    )
    Contract.objects.bulk_create(
        [
            Contract(
                name=f"{tag}-contract-{s['i']}",
                company=c,
                campaign=campaign,
                price=s["price"],
                quality_score=s["quality_score"],
                trial=s["trial"],
                paused=s["paused"],
                radius_km=s["radius_km"],
                max_share_count=s["max_share_count"],
                cap_day=s["cap_day"],
                budget_month=s["budget_month"],
                timezone="UTC",
                created_at=now - timedelta(days=30),
            )
            for c, s in zip(companies, specs, strict=True)
        ],
        batch_size=2000,
    )
    from django.db import connection

    with connection.cursor() as cursor:  # fresh statistics, as autovacuum would give (PostgreSQL)
        cursor.execute("ANALYZE crm_contract, crm_location, crm_company")
    return campaign


def bench_service(now: datetime, instance: str = "harsh") -> dict[str, Any]:
    """`lead_distribute_marketplace` per lead on PostgreSQL with 10,000 contracts."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from distribution.services.marketplace.sale import lead_distribute_marketplace
    from leads.models import Lead

    campaign = _seed_database(now, instance)
    rng = random.Random(2)
    leads = Lead.objects.bulk_create(
        [
            Lead(
                campaign=campaign,
                first_name="Bench",
                last_name=str(n),
                latitude=p[0],
                longitude=p[1],
            )
            for n, p in enumerate(_lead_point(rng) for _ in range(N_SERVICE_LEADS))
        ]
    )
    phases = _PhaseTimer()
    times: list[float] = []
    queries: list[int] = []
    outcomes: dict[str, int] = {}
    with phases:
        for lead in leads:
            connection.queries_log.clear()  # the log keeps 9,000 queries: count per lead
            with CaptureQueriesContext(connection) as ctx:
                t = time.perf_counter()
                attempt = lead_distribute_marketplace(lead_id=lead.pk)
                times.append((time.perf_counter() - t) * 1000)
            queries.append(len(ctx.captured_queries))
            key = attempt.outcome if attempt else "skipped"
            outcomes[key] = outcomes.get(key, 0) + 1
    return {
        "contracts": N_CONTRACTS,
        "leads": N_SERVICE_LEADS,
        "service_ms": _ms(times),
        "selection_ms": _ms(phases.samples["selection"][1:]),
        "index_build_ms_first_lead": round(phases.samples["index"][0], 1),
        "index_refresh_ms": _ms(phases.samples["index"][1:]),
        "engine_select_ms": _ms(phases.samples["engine_select"][1:]),
        "queries_per_lead": {"min": min(queries), "max": max(queries)},
        "outcomes": outcomes,
    }


class _PhaseTimer:
    """Times phases inside the service (bench only): the compiled contracts (built on the
    first lead, refreshed after), the engine, and the whole selection with its locks."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> _PhaseTimer:
        from distribution.caches import market as cache
        from distribution.engine import marketplace as engine
        from distribution.services.marketplace import sale as service

        def timed(module: Any, name: str, label: str) -> None:
            original = getattr(module, name)

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                t = time.perf_counter()
                result = original(*args, **kwargs)
                ms = (time.perf_counter() - t) * 1000
                self.samples.setdefault(label, []).append(ms)
                return result

            self._saved.append((module, name, original))
            setattr(module, name, wrapper)

        cache.market_indexes_clear()  # the first lead builds, as after a worker starts
        timed(cache, "market_index", "index")
        timed(engine, "select_contracts", "engine_select")
        timed(service, "_select_locked", "selection")
        return self

    def __exit__(self, *exc: Any) -> None:
        for module, name, original in self._saved:
            setattr(module, name, original)


# --------------------------------------------------------------------------- 3. batch


def bench_batch(now: datetime) -> dict[str, Any]:
    """5,000 waiting leads × 300 capped contracts: greedy, MILP, LP bound."""
    from distribution.engine import marketplace as engine
    from distribution.engine.marketplace import batch, optimizer

    rng = random.Random(3)
    specs = _contract_specs(BATCH_CONTRACTS, rng)
    for s in specs:  # local buyers around the cities; about as many slots as wanted leads
        s["cap_day"] = rng.randint(15, 55)
        s["budget_month"] = None
        s["paused"] = False
        s["radius_km"] = float(rng.randint(15, 45))
        s["locations"] = [_city_point(rng) for _ in s["locations"]]
    contracts = _snapshots(specs, now, rng, used_fraction=0.0)
    workflow = engine.WorkflowSnapshot(max_multiplication=2)
    started = time.perf_counter()
    leads = []
    for n in range(BATCH_LEADS):
        lat, lon = _city_point(rng)
        snap = engine.InboundLeadSnapshot(
            id=n + 1,
            campaign="1",
            created_at=now - timedelta(seconds=BATCH_LEADS - n),
            latitude=lat,
            longitude=lon,
        )
        leads.append(batch.batch_lead(snap, contracts, workflow, now))
    batch_contracts = [batch.batch_contract(c) for c in contracts]
    eligibility_s = time.perf_counter() - started
    t = time.perf_counter()
    greedy = batch.greedy_in_arrival_order(leads, batch_contracts)
    greedy_s = time.perf_counter() - t
    t = time.perf_counter()
    best = optimizer.optimise_batch(leads, batch_contracts, time_limit=BATCH_TIME_LIMIT)
    milp_s = time.perf_counter() - t
    t = time.perf_counter()
    bound = optimizer.lp_upper_bound(leads, batch_contracts)
    lp_s = time.perf_counter() - t
    problems = batch.allocation_violations(leads, batch_contracts, best.assignments)
    slots = sum(c.remaining_count or 0 for c in batch_contracts)
    return {
        "leads": BATCH_LEADS,
        "contracts": BATCH_CONTRACTS,
        "cap_slots": slots,
        "edges": best.n_edges,
        "eligibility_s": round(eligibility_s, 2),
        "greedy_turnover": float(greedy.objective),
        "greedy_outbound": len(greedy.assignments),
        "greedy_s": round(greedy_s, 2),
        "batch_turnover": float(best.objective),
        "batch_outbound": len(best.assignments),
        "batch_status": best.status,
        "batch_method": best.method,
        "batch_s": round(milp_s, 2),
        "lp_upper_bound": round(bound, 2),
        "lp_s": round(lp_s, 2),
        "batch_vs_bound_pct": round(100 * float(best.objective) / bound, 3) if bound else None,
        "greedy_vs_bound_pct": round(100 * float(greedy.objective) / bound, 3) if bound else None,
        "batch_gain_over_greedy_pct": round(
            100 * (float(best.objective) / float(greedy.objective) - 1), 2
        )
        if greedy.objective
        else None,
        "violations": len(problems),
    }


def run() -> dict[str, Any]:
    """Every figure of the marketplace benchmark (see the module docstring)."""
    _setup_django()
    now = datetime.now(UTC)
    figures: dict[str, Any] = {}
    seeding.database_ready(flush=False)
    for instance in INSTANCES:
        engine_figures = bench_engine(now, instance)
        service_figures = bench_service(now, instance)
        figures[f"{instance}_engine_select_ms_p50"] = engine_figures["select_ms"]["p50"]
        figures[f"{instance}_engine_select_ms_p95"] = engine_figures["select_ms"]["p95"]
        figures[f"{instance}_engine_uncompiled_ms_p50"] = engine_figures["select_ms_uncompiled"][
            "p50"
        ]
        figures[f"{instance}_selection_ms_p50"] = service_figures["selection_ms"]["p50"]
        figures[f"{instance}_selection_ms_p95"] = service_figures["selection_ms"]["p95"]
        figures[f"{instance}_service_ms_p50"] = service_figures["service_ms"]["p50"]
        figures[f"{instance}_service_ms_p95"] = service_figures["service_ms"]["p95"]
        figures[f"{instance}_queries_per_sale"] = service_figures["queries_per_lead"]
        figures[f"{instance}_engine"] = engine_figures
        figures[f"{instance}_service"] = service_figures
    batch = bench_batch(now)
    figures["batch_turnover"] = batch["batch_turnover"]
    figures["greedy_turnover"] = batch["greedy_turnover"]
    figures["lp_upper_bound"] = batch["lp_upper_bound"]
    figures["batch_vs_bound_pct"] = batch["batch_vs_bound_pct"]
    figures["greedy_vs_bound_pct"] = batch["greedy_vs_bound_pct"]
    figures["batch"] = batch
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2, default=str))
