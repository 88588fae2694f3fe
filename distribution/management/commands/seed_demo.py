from __future__ import annotations

import random
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from distribution.configuration import ConfigError, config_apply, load_text
from distribution.demo.fake_buyer import DEMO_CONTRACT, demo_delivery
from distribution.services import leads_distribute_pending
from distribution.services.geo import postal_codes_load
from leads.models import Campaign, Lead, Source
from leads.services import lead_ingest

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "demo" / "demo.yaml"
# The demo cities' postal codes in GeoNames' format (what `manage.py load_postcodes` reads):
# the solar leads are posted with a postcode and city only, the way sellers send them, and
# are placed from this table offline.
DEMO_POSTCODES = DEMO_CONFIG.parent / "postcodes.txt"
FIRST = [
    "Sophie",
    "Daan",
    "Emma",
    "Lucas",
    "Julia",
    "Sem",
    "Tess",
    "Milan",
    "Anna",
    "Noah",
    "Olivia",
    "Liam",
    "Mia",
    "James",
    "Zoe",
    "Oliver",
    "Isabella",
    "Elijah",
    "Ava",
    "Mateo",
    "Charlotte",
    "Henry",
    "Amelia",
    "Finn",
    "Lotte",
    "Jesse",
    "Fleur",
    "Thijs",
]
LAST = [
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
]
CITIES = [
    ("Amsterdam", "NL", "1011", 52.3676, 4.9041),
    ("Rotterdam", "NL", "3011", 51.9244, 4.4777),
    ("Utrecht", "NL", "3511", 52.0907, 5.1214),
    ("Eindhoven", "NL", "5611", 51.4416, 5.4697),
    ("Groningen", "NL", "9711", 53.2194, 6.5665),
    ("Antwerp", "BE", "2000", 51.2194, 4.4025),
    ("New York", "US", "10001", 40.7128, -74.0060),
    ("Boston", "US", "02108", 42.3601, -71.0589),
]
COMPANIES = [
    "Acme Roofing",
    "Northwind Homes",
    "Globex",
    "Initech",
    "Umbrella Estates",
    "Stark Builders",
    "Wayne Property",
    "",
    "",
    "",
]


def demo_config() -> dict[str, Any]:
    """The demo's setup; in the embedded run (DEMO_FAKE_BUYER) one contract delivers by
    webhook to the demo's own fake buyer."""
    data: dict[str, Any] = load_text(DEMO_CONFIG.read_text())
    if settings.DEMO_FAKE_BUYER:
        for item in data.get("contracts", []):
            if item.get("name") == DEMO_CONTRACT:
                item["delivery"] = demo_delivery(settings.SITE_URL)
    return data


class Command(BaseCommand):
    help = (
        "Fill the database with a realistic demo: agents, sources, campaigns (and the "
        "routing and marketplace setup), plus a few hundred leads. Safe to run again: the "
        "setup is upserted and leads are only added when the demo has none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--leads", type=int, default=300, help="How many leads (default 300)")
        parser.add_argument("--seed", type=int, default=7, help="Random seed")
        parser.add_argument(
            "--force-leads", action="store_true", help="Add leads even if demo leads already exist"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = config_apply(demo_config())
        except ConfigError as exc:
            raise CommandError("the demo configuration is invalid:\n" + str(exc)) from exc
        self.stdout.write("Demo setup: " + "; ".join(report.lines()))
        with DEMO_POSTCODES.open(encoding="utf-8") as handle:
            table = postal_codes_load(lines=handle)
        self.stdout.write(f"Demo postal codes: {table['rows']} loaded.")
        sources = list(
            Source.objects.filter(
                slug__in=["web-form", "zillow", "partner-api", "csv-upload"]
            ).order_by("slug")
        )
        if not options["force_leads"] and Lead.objects.filter(source__in=sources).exists():
            self.stdout.write("Demo leads already exist; none added.")
            return
        campaigns = {c.slug: c for c in Campaign.objects.all()}
        rng = random.Random(options["seed"])
        now = timezone.now()
        bar = tqdm(
            total=options["leads"], unit="lead", desc="Demo leads", file=sys.stderr, disable=None
        )
        created = 0
        for i in range(options["leads"]):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            city, country, postcode, lat, lon = rng.choice(CITIES)
            slug = rng.choice(["solar", "solar", "mortgage", "insulation", None])
            data = {
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}.{i}@example.com".lower().replace(" ", ""),
                "phone": f"+31 6 {rng.randint(1000_0000, 9999_9999)}",
                "campaign": slug,
                "external_id": f"demo-{i:05d}",
                "postcode": f"{postcode}{'AB' if country == 'NL' else ''}",
                "city": city,
                "country": country,
                "latitude": round(lat + rng.uniform(-0.05, 0.05), 5),
                "longitude": round(lon + rng.uniform(-0.05, 0.05), 5),
                "company_name": rng.choice(COMPANIES),
                "company_size": rng.choice([None, 5, 20, 80, 250, 1200]),
                "attributes": {
                    "budget": rng.choice([2000, 5000, 12000, 30000]),
                    "interest": rng.choice(["quote", "call back", "brochure"]),
                },
            }
            if slug == "solar":  # posted with a postcode and city only: placed from the table
                data["latitude"] = data["longitude"] = None
            with transaction.atomic():
                lead, was_created = lead_ingest(
                    source=rng.choice(sources), data=data, campaigns=campaigns, queue=False
                )
                if was_created:
                    # spread arrival over the last two weeks so charts and windows have history
                    Lead.objects.filter(pk=lead.pk).update(
                        created_at=now - timedelta(minutes=rng.randint(0, 14 * 24 * 60))
                    )
                    created += 1
            bar.update(1)
        bar.close()
        outcomes = leads_distribute_pending(trigger="command")
        self.stdout.write(
            f"Demo leads: {created} created; distributed: "
            + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(outcomes.items()))
            + "."
        )
