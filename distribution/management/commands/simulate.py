from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution.errors import DistributionError
from distribution.services.simulate import rule_simulate


class Command(BaseCommand):
    help = (
        "Simulate distribution: replay the leads of the last N days through the rules "
        "(RULE optionally changed with --set, and treated as enabled) and show who would "
        "get what and why. Nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rule", help="The rule to simulate (default: the rule table)")
        parser.add_argument("--days", type=int, default=7, help="Replay this many days (7)")
        parser.add_argument("--json", action="store_true", help="Print one JSON document")
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Change the rule for the simulation, e.g. strategy=weighted, "
            'pool=east, claim_timeout=5m, caps={"day": 3} (repeatable)',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        changes: dict[str, Any] = {}
        for item in options["set"]:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--set {item!r}: use KEY=VALUE")
            try:
                changes[key.strip()] = json.loads(value)
            except ValueError:
                changes[key.strip()] = value
        if changes and not options["rule"]:
            raise CommandError("--set needs --rule")
        if options["days"] < 1:
            raise CommandError("--days must be at least 1")
        try:
            result = rule_simulate(rule_name=options["rule"], days=options["days"], changes=changes)
        except (DistributionError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            doc = {
                "decisions": [
                    {k: d[k] for k in ("lead", "rule", "owner", "status", "candidates")}
                    for d in result["decisions"]
                ],
                "totals": result["totals"],
            }
            self.stdout.write(json.dumps(doc, indent=2, default=str))
            return
        for d in result["decisions"]:
            self.stdout.write(
                f"lead {d['lead']}: {d['status']}"
                + (f" → {d['owner']}" if d["owner"] else "")
                + f" — {d['reason']}"
            )
        self.stdout.write("")
        for email, t in result["totals"].items():
            cap = "no cap" if t["cap"] is None else f"cap {t['cap']}"
            self.stdout.write(f"{email}: would receive {t['would_receive']} ({cap})")
        self.stdout.write(f"{len(result['decisions'])} lead(s) simulated; nothing written.")
