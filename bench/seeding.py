"""What the benchmarks share: the bench database made ready, and the routing seed — agents
in overlapping pools, one enabled rule per pool.

The bench scripts import it with bench/ on sys.path (bench/run.py puts it there; a script
run directly has its own folder there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

STRATEGIES = ["round_robin", "weighted", "load_balanced", "round_robin", "broadcast"]


def database_ready(*, flush: bool) -> None:
    """Create the bench database when missing (connecting to `postgres`), then migrate it;
    FLUSH also empties it."""
    from django.core.management import call_command
    from django.db import connection

    db = connection.settings_dict
    if "postgresql" in db["ENGINE"]:
        import psycopg

        conninfo = psycopg.conninfo.make_conninfo(
            host=str(db.get("HOST") or "127.0.0.1"),
            port=str(db.get("PORT") or 5432),
            user=str(db.get("USER") or "postgres"),
            dbname="postgres",
            **({"password": str(db["PASSWORD"])} if db.get("PASSWORD") else {}),
        )
        with psycopg.connect(conninfo, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{db["NAME"]}"')
    call_command("migrate", verbosity=0, interactive=False)
    if flush:
        call_command("flush", verbosity=0, interactive=False)


def seed_agents(n: int, *, named: bool = False) -> list[Any]:
    """N agents `agent<i>@bench.local` (display name "Agent <i>" when NAMED); one in 23 is
    unavailable."""
    from accounts.models import AgentProfile, User

    users = User.objects.bulk_create(
        User(
            username=f"agent{i}@bench.local",
            email=f"agent{i}@bench.local",
            **({"display_name": f"Agent {i}"} if named else {}),
        )
        for i in range(n)
    )
    AgentProfile.objects.bulk_create(
        AgentProfile(user=u, available=(i % 23 != 0)) for i, u in enumerate(users)
    )
    return users


def seed_pools_and_rules(
    users: Sequence[Any],
    sources: Sequence[Any],
    campaigns: Sequence[Any],
    *,
    rules: int,
    pool_size: int,
    member: Callable[[int], dict[str, Any]],
    rule: Callable[[int, str], dict[str, Any]],
) -> None:
    """RULES pools of POOL_SIZE of the USERS, each starting where the previous one's first
    members end (so neighbours share agents), and one enabled rule per pool: priority its
    number, strategies, campaigns and sources in turn. MEMBER(position) and RULE(number,
    strategy) give the fields each benchmark sets its own way."""
    from distribution.models import Pool, PoolMember, Rule

    members = []
    for r in range(rules):
        pool = Pool.objects.create(name=f"pool{r}")
        start = r * len(users) // rules  # the last members are the next pool's first
        members += [
            PoolMember(
                pool=pool,
                agent=users[(start + pos) % len(users)],
                position=pos,
                weight=1 + pos % 3,
                **member(pos),
            )
            for pos in range(pool_size)
        ]
        strategy = STRATEGIES[r % len(STRATEGIES)]
        created = Rule.objects.create(
            name=f"rule{r:02d}",
            priority=r,
            enabled=True,
            strategy=strategy,
            pool=pool,
            campaign=campaigns[r % len(campaigns)],
            **rule(r, strategy),
        )
        created.sources.set([sources[r % len(sources)]])
    PoolMember.objects.bulk_create(members)
