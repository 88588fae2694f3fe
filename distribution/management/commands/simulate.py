from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution.errors import DistributionError
from distribution.services.simulate import Simulation

JSON_KEYS = ("lead", "rule", "owner", "status", "candidates")  # DESIGN §7
# added to §7's shape (nothing renamed): what really happened, and whether the replay differs
JSON_EXTRA_KEYS = ("actual", "differs")


class Command(BaseCommand):
    help = (
        "Simulate distribution: replay the leads of the last N days through the rules "
        "(RULE optionally changed with --set, and treated as enabled) and show who would "
        "get what and why, against what really happened. Nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rule", help="The rule to simulate (default: the rule table)")
        parser.add_argument("--days", type=int, default=7, help="Replay this many days (7)")
        parser.add_argument(
            "--limit", type=int, default=None, help="Replay at most this many leads (all)"
        )
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
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        try:
            simulation = Simulation(
                rule_name=options["rule"],
                days=options["days"],
                changes=changes,
                limit=options["limit"],
            )
        except (DistributionError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        # the decisions are printed as they are made: memory stays flat over any replay
        if options["json"]:
            self.stdout.write('{"decisions": [')
            separator = ""
            for d in simulation.decisions():
                line = json.dumps({k: d[k] for k in (*JSON_KEYS, *JSON_EXTRA_KEYS)}, default=str)
                self.stdout.write(f"{separator}  {line}", ending="")
                separator = ",\n"
            self.stdout.write("\n],")
            totals = json.dumps(simulation.totals(), indent=2, default=str)
            self.stdout.write(f'"totals": {totals},')
            self.stdout.write(f'"differing": {simulation.differing}}}')
            return
        n = 0
        for d in simulation.decisions():
            n += 1
            actual = d["actual"]
            self.stdout.write(
                ("≠ " if d["differs"] else "= ")
                + f"lead {d['lead']}: {d['status']}"
                + (f" → {d['owner']}" if d["owner"] else "")
                + f" — {d['reason']}"
                + f" | actually {actual['status']}"
                + (f" → {actual['owner']}" if actual["owner"] else "")
            )
        self.stdout.write("")
        for email, t in simulation.totals().items():
            cap = "no cap" if t["cap"] is None else f"cap {t['cap']}"
            self.stdout.write(
                f"{email}: would receive {t['would_receive']}, did receive {t['received']} ({cap})"
            )
        self.stdout.write(
            f"{n} lead(s) simulated, {simulation.differing} differ from what happened; "
            "nothing written."
        )
