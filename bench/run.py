"""Run every benchmark (bench/bench_*.py) and write its figures to bench/results/.

Each module defines `run() -> dict` returning its figures; the harness writes
`bench/results/<name>.json` and a combined `bench/results/summary.md`.

Databases: the run's own, never DATABASE_URL (in a shell it names a database in use).
BENCH_DATABASE_URL (default `leadrouter_bench_<time>_<pid>` on BENCH_SERVER_URL, default
postgres://postgres@127.0.0.1:5432) and BENCH_PGBENCH_DB (default that name + `_pgbench`);
the ones chosen here are dropped at the end (BENCH_KEEP_DATABASES=1 keeps them), the ones
given are kept. Every process of the run (servers, workers) inherits the names.
Usage: python bench/run.py [name ...]
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def choose_databases() -> list[str]:
    """Name the run's databases in the environment; those this run owns (to drop)."""
    server = os.environ.get("BENCH_SERVER_URL", "postgres://postgres@127.0.0.1:5432")
    owned = []
    if not os.environ.get("BENCH_DATABASE_URL"):
        name = f"leadrouter_bench_{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}_{os.getpid()}"
        os.environ["BENCH_DATABASE_URL"] = f"{server.rstrip('/')}/{name}"
        owned.append(name)
    bench_db = os.environ["BENCH_DATABASE_URL"].rpartition("/")[2].partition("?")[0]
    if not os.environ.get("BENCH_PGBENCH_DB"):
        os.environ["BENCH_PGBENCH_DB"] = f"{bench_db}_pgbench"
        owned.append(os.environ["BENCH_PGBENCH_DB"])
    return owned


def drop_databases(names: list[str]) -> None:
    """Drop the run's own databases (connected to `postgres` on the bench server)."""
    if not names or os.environ.get("BENCH_KEEP_DATABASES") == "1":
        return
    import psycopg
    from django.db import connections

    connections.close_all()
    db = connections["default"].settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        host=str(db.get("HOST") or "127.0.0.1"),
        port=str(db.get("PORT") or 5432),
        user=str(db.get("USER") or "postgres"),
        dbname="postgres",
        **({"password": str(db["PASSWORD"])} if db.get("PASSWORD") else {}),
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"dropped {', '.join(names)}")


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    owned = choose_databases()
    print(f"databases: {os.environ['BENCH_DATABASE_URL']}, {os.environ['BENCH_PGBENCH_DB']}")
    try:
        return _run(argv)
    finally:
        drop_databases(owned)


def _run(argv: list[str]) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    names = argv or sorted(
        p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py")
    )
    summary = [
        f"# Benchmark results ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()})",
        "",
    ]
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench_{name}")
        print(f"== {name}", flush=True)
        try:
            figures = module.run()
        except Exception as exc:  # report and go on with the other benchmarks
            failed += 1
            figures = {"error": f"{exc.__class__.__name__}: {exc}"}
        (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
        summary.append(f"## {name}")
        summary.extend(f"- {k}: {v}" for k, v in figures.items() if not isinstance(v, dict | list))
        summary.append("")
        print(json.dumps(figures, indent=2, default=str), flush=True)
    # the summary covers every benchmark's latest figures, not only the ones run now
    for path in sorted(RESULTS.glob("*.json")):
        if path.stem not in names:
            figures = json.loads(path.read_text())
            summary.append(f"## {path.stem} (earlier run)")
            summary.extend(
                f"- {k}: {v}" for k, v in figures.items() if not isinstance(v, dict | list)
            )
            summary.append("")
    (RESULTS / "summary.md").write_text("\n".join(summary))
    print(f"wrote {RESULTS}/summary.md")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
