"""Ingestion: `POST /api/v1/leads` requests/s against a trivial Django JSON view under the
same gunicorn (`-w 2`), measured interleaved A B A B …; the ratio is the median of the
pairs' ratios (goal ≥ 0.6, issue 10).

Each POST is a new lead of one campaign (so the duplicate check runs) with its own e-mail
and external_id; every answer must be 2xx. The load generator is wrk (apt-get install wrk).
It runs against a scratch database of its own (`leadrouter_bench_ingest_<pid>`, or
BENCH_INGEST_DATABASE), created, migrated and dropped; the server is the code of this
checkout, or of BENCH_INGEST_CODE (e.g. another checkout, for a before/after table; several
separated by commas are interleaved too). The POSTs publish to BENCH_INGEST_BROKER_URL
(default memory://; a redis:// URL measures the real publish — nothing consumes it, so use
a Redis db of your own and flush it).

Usage: python bench/run.py ingest      (DATABASE_URL names the server; its database name is
ignored)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TOKEN = "bench-ingest-token"
ROUNDS = int(os.environ.get("BENCH_INGEST_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_INGEST_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_INGEST_CONNECTIONS", "8"))

POST_LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  tag = args[1] .. "-" .. tostring(tid)
  n = 0
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  n = n + 1
  local id = tag .. "-" .. n
  local body = '{"first_name":"Bench","last_name":"Lead","email":"' .. id ..
    '@example.com","phone":"","external_id":"' .. id ..
    '","campaign":"bench","city":"Amsterdam","country":"NL"}'
  return wrk.format(nil, nil, nil, body)
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadrouter")
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def _sql(url: str, sql: str) -> Any:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone() if sql.startswith("SELECT") else conn.execute(sql)
    return row


def _manage(code: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=code, env=env, check=True, capture_output=True
    )


SEED = f"""
from accounts.tokens import hash_token
from leads.models import Campaign, Source
Source.objects.update_or_create(slug="bench", defaults={{"name": "Bench",
    "token_hash": hash_token("{TOKEN}"), "active": True}})
Campaign.objects.get_or_create(slug="bench", defaults={{"name": "Bench"}})
"""


def _server(code: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn",
            "config.wsgi",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--chdir",
            str(code),
            "--pythonpath",
            f"{code},{BENCH}",
            "--log-level",
            "warning",
        ],
        env={**env, "DJANGO_SETTINGS_MODULE": "ingest_settings"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"gunicorn for {code} did not start")


SENT = {"posts": 0, "runs": 0}


def _wrk(url: str, script: str | None = None) -> float:
    cmd = ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{SECONDS}s"]
    if script:
        SENT["runs"] += 1
        cmd += ["-s", script, url, "--", f"{os.getpid()}-{SENT['runs']}"]
    else:
        cmd += [url]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    # wrk counts the requests in flight when it stops as timeouts: at most one a connection
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = errors is not None and (
        sum(int(n) for n in errors.groups()[:3]) > 0 or int(errors.group(4)) > CONNECTIONS
    )
    if bad or failed:
        raise RuntimeError(f"wrk saw failures against {url}:\n{out}")
    if script:
        SENT["posts"] += int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{out}")
    return float(match.group(1))


def run() -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    name = os.environ.get("BENCH_INGEST_DATABASE", f"leadrouter_bench_ingest_{os.getpid()}")
    url = _database_url(name)
    codes = [
        Path(c).resolve() for c in os.environ.get("BENCH_INGEST_CODE", str(ROOT)).split(",") if c
    ]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=url, BENCH_DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings.bench"
    )
    admin = _database_url("postgres")
    _sql(admin, f'DROP DATABASE IF EXISTS "{name}"')
    _sql(admin, f'CREATE DATABASE "{name}"')
    servers: list[subprocess.Popen[bytes]] = []
    stored = 0
    try:
        _manage(codes[-1], env, "migrate", "--verbosity", "0")
        _manage(codes[-1], env, "shell", "-c", SEED)
        ports = [_free_port() for _ in codes]
        servers = [_server(c, env, p) for c, p in zip(codes, ports, strict=True)]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(POST_LUA % {"run": os.getpid(), "token": TOKEN})
        base = [f"http://127.0.0.1:{p}" for p in ports]
        for b in base:  # warm each worker (imports, connections, caches)
            _wrk(f"{b}/bench/trivial")
            _wrk(f"{b}/api/v1/leads", lua.name)
        pairs: dict[str, list[tuple[float, float]]] = {str(c): [] for c in codes}
        for _ in range(ROUNDS):  # A B A B …: each POST reading beside its reference
            for code, b in zip(codes, base, strict=True):
                trivial = _wrk(f"{b}/bench/trivial")
                post = _wrk(f"{b}/api/v1/leads", lua.name)
                pairs[str(code)].append((trivial, post))
        os.unlink(lua.name)
        stored = _sql(url, "SELECT count(*) FROM leads_lead")[0]
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        _sql(admin, f'DROP DATABASE IF EXISTS "{name}"')
    figures: dict[str, Any] = {
        "rounds": ROUNDS,
        "seconds_each": SECONDS,
        "connections": CONNECTIONS,
        "broker": os.environ.get("BENCH_INGEST_BROKER_URL", "memory://"),
        # every POST a new lead (wrk counts requests sent; the last few may be cut off)
        "posts_sent": SENT["posts"],
        "leads_stored": stored,
    }
    for index, code in enumerate(codes):
        readings = pairs[str(code)]
        key = "" if len(codes) == 1 else f"_{index}"
        figures[f"code{key}"] = str(code)
        figures[f"trivial_rps{key}"] = round(statistics.median(t for t, _ in readings), 1)
        figures[f"post_rps{key}"] = round(statistics.median(p for _, p in readings), 1)
        figures[f"ratio{key}"] = round(statistics.median(p / t for t, p in readings), 3)
        figures[f"pairs{key}"] = [[round(t, 1), round(p, 1)] for t, p in readings]
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
