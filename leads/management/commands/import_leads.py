from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from leads.csv_import import leads_import_csv
from leads.models import Campaign, Source


class Command(BaseCommand):
    help = (
        "Import leads from a CSV file. Columns are matched to lead fields by name (common "
        "spellings understood; --map overrides); other columns go to attributes. Bad rows "
        "are reported with their line numbers; good rows are kept and distributed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", help="Source slug the leads come from")
        parser.add_argument("--campaign", help="Campaign slug for rows without one")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="COLUMN=FIELD",
            help="Map a CSV column to a lead field, e.g. 'E-mail=email'",
        )
        parser.add_argument("--encoding", default="utf-8-sig")
        parser.add_argument(
            "--no-distribute",
            action="store_true",
            help=(
                "Store the leads without distributing them: the sweeper leaves them; "
                "distribute_pending or enabling a matching rule distributes them"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        source = None
        if options["source"]:
            source = Source.objects.filter(slug=options["source"]).first()
            if source is None:
                raise CommandError(f"--source: no source {options['source']!r}")
        if options["campaign"] and not Campaign.objects.filter(slug=options["campaign"]).exists():
            raise CommandError(f"--campaign: no campaign {options['campaign']!r}")
        overrides: dict[str, str] = {}
        for item in options["map"]:
            column, sep, field = item.partition("=")
            if not sep or not column or not field:
                raise CommandError(f"--map {item!r}: use COLUMN=FIELD")
            overrides[column] = field.strip()
        with path.open(encoding=options["encoding"], newline="") as handle:
            total = max(sum(1 for _ in handle) - 1, 0)
            handle.seek(0)
            bar = tqdm(total=total, unit="row", desc="Importing", file=sys.stderr, disable=None)
            try:
                result = leads_import_csv(
                    handle=handle,
                    source=source,
                    overrides=overrides,
                    default_campaign=options["campaign"],
                    queue=not options["no_distribute"],
                    on_row=lambda: bar.update(1),
                )
            except (ValueError, UnicodeDecodeError) as exc:
                raise CommandError(f"{path}: {exc}") from exc
            finally:
                bar.close()
        for line, reason in result.errors:
            self.stderr.write(f"line {line}: {reason}")
        self.stdout.write(
            f"{result.rows} rows read: {result.created} leads imported, "
            f"{result.repeated} already known (imported before), "
            f"{len(result.errors)} rejected."
        )
        if result.errors:
            raise CommandError(
                f"{len(result.errors)} row(s) rejected (see the lines above); "
                f"the {result.created} good row(s) were kept."
            )
