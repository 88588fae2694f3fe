from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution.services.geo import PostalFileError, postal_codes_load


def _lines(path: Path) -> Iterator[str]:
    """The lines of a GeoNames file: a .txt, or the .zip GeoNames serves (NL.zip holds
    NL.txt and readme.txt: every .txt but the readme is read)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [
                n
                for n in archive.namelist()
                if n.lower().endswith(".txt") and Path(n).name.lower() != "readme.txt"
            ]
            if not names:
                raise CommandError(f"{path}: no .txt file in the archive")
            for name in names:
                with archive.open(name) as raw:
                    yield from io.TextIOWrapper(raw, encoding="utf-8")
        return
    with path.open(encoding="utf-8") as handle:
        yield from handle


class Command(BaseCommand):
    help = (
        "Load an offline postal-code table from a GeoNames postal-code file "
        "(download.geonames.org/export/zip/: XX.zip, XX.txt, allCountries.zip; tab-separated "
        "country, postal code, place, admin names/codes, latitude, longitude, accuracy). "
        "Leads sent with a postcode or city but no coordinates are placed from it. The rows "
        "of each country in the file replace that country's rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="The GeoNames file (.txt or .zip)")
        parser.add_argument(
            "--append",
            action="store_true",
            help="Keep the rows already loaded for the file's countries",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            counts = postal_codes_load(lines=_lines(path), append=options["append"])
        except PostalFileError as exc:
            raise CommandError(f"{path}: {exc.detail}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        self.stdout.write(
            f"{counts['rows']} postal code(s) of {counts['countries']} country(ies) loaded"
            + (f", {counts['skipped']} row(s) without a code skipped" if counts["skipped"] else "")
            + (f"; {counts['forgotten']} cached place(s) forgotten" if counts["forgotten"] else "")
            + "."
        )
