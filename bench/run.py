"""Run every benchmark (bench/bench_*.py) and write its figures to bench/results/.

Each module defines `run() -> dict` returning its figures; the harness writes
`bench/results/<name>.json` and a combined `bench/results/summary.md`. Benchmarks that need
PostgreSQL use DATABASE_URL (default postgres://postgres@127.0.0.1:5432/leadrouter_bench).
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


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
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
