"""Issue 12 item 8: the service area works from what sellers really send — a postcode, a
city, a country and no coordinates. Placed from the offline postal-code table (GeoNames'
format, `manage.py load_postcodes`) or by geopy's geocoder (here a fake Nominatim on
127.0.0.1 that the test starts), cached per place; a place nobody knows says
`no_coordinates`."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from distribution import services
from distribution.models import DistributionAttempt, GeoPlace, PostalCode
from distribution.services.geo import lead_points_resolve
from leads import caches
from leads.models import Lead
from tests.factories import LeadFactory
from tests.factories.marketplace import AMSTERDAM, GRONINGEN, LocationFactory

from .conftest import arrive, sold_to

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data" / "geonames_postcodes.txt"
T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def run(*args: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def postcodes(db: None) -> None:
    run("load_postcodes", str(DATA))


class FakeNominatim:
    """A Nominatim `/search` on 127.0.0.1: answers the places in `known`, [] otherwise, and
    records every request it gets."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, str], tuple[float, float]] = {}
        self.requests: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append({"path": url.path, **query})
                key = (query.get("postalcode", "").replace(" ", "").upper(), query.get("city", ""))
                point = fake.known.get(key)
                body = (
                    [{"lat": str(point[0]), "lon": str(point[1]), "display_name": "x"}]
                    if point
                    else []
                )
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def geocoder(settings: Any) -> Iterator[FakeNominatim]:
    fake = FakeNominatim()
    settings.GEOCODER = "nominatim"
    settings.GEOCODER_URL = fake.url
    settings.GEOCODER_TIMEOUT = 3.0
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def areas(workflow: Any, contract: Any) -> dict[str, Any]:
    """Three buyers: Amsterdam within 40 km, Groningen within 40 km, and one nationwide."""
    workflow(rules=[("qs", 3)], max_multiplication=3)
    amsterdam = contract(name="amsterdam-40", radius_km=40, quality_score=9, max_share_count=3)
    LocationFactory(company=amsterdam.company, latitude=AMSTERDAM[0], longitude=AMSTERDAM[1])
    groningen = contract(name="groningen-40", radius_km=40, quality_score=8, max_share_count=3)
    LocationFactory(company=groningen.company, latitude=GRONINGEN[0], longitude=GRONINGEN[1])
    nationwide = contract(name="nationwide", quality_score=1, max_share_count=3)
    return {"amsterdam": amsterdam, "groningen": groningen, "nationwide": nationwide}


def placed(campaign: Any, **fields: Any) -> Lead:
    """A pending lead posted the way sellers send it: a place, no coordinates."""
    fields.setdefault("country", "NL")
    return LeadFactory(campaign=campaign, latitude=None, longitude=None, **fields)


def reasons(attempt: DistributionAttempt) -> dict[str, str | None]:
    return {c["contract"]: c["reason"] for c in attempt.candidates}


def geo_queries(ctx: CaptureQueriesContext, table: str, verb: str = "SELECT") -> int:
    return sum(
        1
        for q in ctx.captured_queries
        if f'"distribution_{table}"' in q["sql"] and q["sql"].lstrip().upper().startswith(verb)
    )


# --- the offline table ------------------------------------------------------------------


def test_load_postcodes_reads_geonames_files_and_a_reload_replaces_the_country(tmp_path):
    out = run("load_postcodes", str(DATA))
    assert "8 postal code(s) of 4 country(ies) loaded" in out
    amsterdam = PostalCode.objects.get(country="NL", postal_code="1011")
    assert (amsterdam.place_name, amsterdam.admin_name1, amsterdam.accuracy) == (
        "Amsterdam",
        "Noord-Holland",
        6,
    )
    assert (amsterdam.latitude, amsterdam.longitude) == (52.3731, 4.9034)
    assert PostalCode.objects.get(country="US", postal_code="02108").accuracy is None
    # GeoNames serves XX.zip holding XX.txt and readme.txt; NL's rows are replaced
    archive = tmp_path / "NL.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "GeoNames readme: not data\n")
        z.writestr(
            "NL.txt",
            "NL\t1011\tAmsterdam\tNoord-Holland\t07\tAmsterdam\t0363\t\t\t52.37\t4.90\t6\n",
        )
    assert "1 postal code(s) of 1 country(ies) loaded" in run("load_postcodes", str(archive))
    assert PostalCode.objects.filter(country="NL").count() == 1
    assert PostalCode.objects.filter(country="DE").count() == 1  # other countries kept
    # not GeoNames' layout: refused with the line, nothing loaded
    bad = tmp_path / "bad.csv"
    bad.write_text("NL,1011,Amsterdam,52.37,4.90\n")
    with pytest.raises(CommandError, match="line 1: 1 tab-separated columns"):
        run("load_postcodes", str(bad))
    assert PostalCode.objects.filter(country="NL").count() == 1


def test_a_lead_with_postcode_and_city_only_reaches_the_buyers_whose_area_covers_it(
    postcodes, areas
):
    """Today such a lead loses every buyer with a service area as "out of service area"."""
    campaign = areas["amsterdam"].campaign
    lead = placed(campaign, postcode="1011 AB", city="Amsterdam")  # NL_full-style code
    attempt = arrive(lead)
    assert sorted(sold_to(lead)) == ["amsterdam-40", "nationwide"]
    assert reasons(attempt)["groningen-40"] == "out_of_service_area"  # placed, and far
    # by city alone (no postcode), and a postcode the table holds whole
    by_city = placed(campaign, postcode="", city="  groningen ")
    arrive(by_city)
    assert sorted(sold_to(by_city)) == ["groningen-40", "nationwide"]
    cached = GeoPlace.objects.get(key="NL|1011AB|amsterdam")
    assert cached.source == "table" and cached.found
    # the lead keeps what the seller sent
    assert Lead.objects.get(pk=lead.pk).latitude is None


def test_a_place_nobody_knows_says_no_coordinates(postcodes, areas):
    lead = placed(areas["amsterdam"].campaign, postcode="9999 ZZ", city="Atlantis")
    attempt = arrive(lead)
    assert sold_to(lead) == ["nationwide"]
    assert reasons(attempt) == {
        "amsterdam-40": "no_coordinates",
        "groningen-40": "no_coordinates",
        "nationwide": None,
    }
    assert attempt.rules_tried[-1]["summary"]["no_coordinates"] == 2
    assert "out_of_service_area" not in attempt.rules_tried[-1]["summary"]
    # no geocoder configured: not cached as unknown, so a table loaded later answers
    assert not GeoPlace.objects.exists()


# --- the geocoder (a fake Nominatim on 127.0.0.1) -----------------------------------------


def test_the_geocoder_places_a_lead_once_per_place(geocoder, areas):
    geocoder.known[("1011AB", "amsterdam")] = (52.3731, 4.9034)
    campaign = areas["amsterdam"].campaign
    first = placed(campaign, postcode="1011 AB", city="Amsterdam")
    second = placed(campaign, postcode="1011ab", city="AMSTERDAM ")  # the same place
    arrive(first)
    arrive(second)
    assert sorted(sold_to(first)) == sorted(sold_to(second)) == ["amsterdam-40", "nationwide"]
    assert len(geocoder.requests) == 1  # one place, looked up once
    asked = geocoder.requests[0]
    assert asked["path"] == "/search"
    assert (asked["postalcode"], asked["city"], asked["countrycodes"]) == (
        "1011 AB",
        "amsterdam",
        "NL",
    )
    assert GeoPlace.objects.get(key="NL|1011AB|amsterdam").source == "geocoder"
    # a place the geocoder does not know: no_coordinates, and cached as unknown
    lost = placed(campaign, postcode="0000", city="Nowhere")
    assert reasons(arrive(lost))["amsterdam-40"] == "no_coordinates"
    again = placed(campaign, postcode="0000", city="nowhere")
    assert reasons(arrive(again))["amsterdam-40"] == "no_coordinates"
    assert len(geocoder.requests) == 2
    assert GeoPlace.objects.get(key="NL|0000|nowhere").source == "unknown"


def test_the_table_answers_before_the_geocoder(postcodes, geocoder, areas):
    lead = placed(areas["amsterdam"].campaign, postcode="1012", city="Amsterdam")
    arrive(lead)
    assert "amsterdam-40" in sold_to(lead)
    assert geocoder.requests == []


def test_a_geocoder_that_does_not_answer_is_asked_again_later(settings, areas):
    settings.GEOCODER = "nominatim"
    settings.GEOCODER_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.GEOCODER_TIMEOUT = 1.0
    lead = placed(areas["amsterdam"].campaign, postcode="1011", city="Amsterdam")
    assert reasons(arrive(lead))["amsterdam-40"] == "no_coordinates"
    assert not GeoPlace.objects.exists()  # not cached: the next lead asks again


@pytest.fixture
def handed_off(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from distribution.services import queueing

    sent: list[int] = []
    monkeypatch.setattr(
        queueing, "_enqueue", lambda lead_id, trigger="arrival", **_: sent.append(lead_id) or True
    )
    return sent


def test_the_ingestion_request_never_geocodes(api, source, geocoder, areas, handed_off):
    """POST /api/v1/leads stays its one statement: the place is looked up by the worker."""
    caches.clear_all()
    geocoder.known[("1011", "amsterdam")] = (52.3731, 4.9034)
    campaign = areas["amsterdam"].campaign
    with CaptureQueriesContext(connection) as ctx:
        response = api.post(
            "/api/v1/leads",
            {
                "first_name": "Jane",
                "email": "jane@example.com",
                "campaign": campaign.slug,
                "postcode": "1011",
                "city": "Amsterdam",
                "country": "NL",
            },
            token=source.plain_token,
        )
    assert response.status_code == 201, response.content
    assert geocoder.requests == []
    assert not any("geoplace" in q["sql"] or "postalcode" in q["sql"] for q in ctx.captured_queries)
    lead = Lead.objects.get(pk=response.json()["id"])
    assert lead.latitude is None
    services.lead_dispatch(lead_id=lead.pk, trigger="arrival")  # what the worker runs
    assert "amsterdam-40" in sold_to(lead)
    assert len(geocoder.requests) == 1


# --- the query budget: one place lookup per batch ------------------------------------------


def test_one_place_lookup_per_batch_whatever_the_number_of_leads(postcodes, contract, workflow):
    workflow(
        rules=[("qs", 1)],
        mode="window",
        batch_optimal=True,
        max_multiplication=1,
        window_duration=timedelta(hours=1),
        recheck_every=timedelta(minutes=5),
    )
    local = contract(name="amsterdam-only", radius_km=20)
    LocationFactory(company=local.company, latitude=AMSTERDAM[0], longitude=AMSTERDAM[1])
    places = [("1011", "Amsterdam"), ("1012", "Amsterdam"), ("9711", "Groningen")]

    def batch(n: int) -> tuple[list[Lead], CaptureQueriesContext]:
        with time_machine.travel(T0, tick=False):
            leads = [
                placed(local.campaign, postcode=places[i % 3][0], city=places[i % 3][1])
                for i in range(n)
            ]
            for lead in leads:
                assert arrive(lead).outcome == "waiting_for_batch"
            with CaptureQueriesContext(connection) as ctx:
                services.windows_recheck_due()
        return leads, ctx

    leads, first = batch(12)
    # places not seen yet: the cache once, the table once, one insert — for 12 leads
    assert geo_queries(first, "geoplace") == 1
    assert geo_queries(first, "postalcode") == 1
    assert geo_queries(first, "geoplace", "INSERT") == 1
    sold = [lead for lead in leads if sold_to(lead) == ["amsterdam-only"]]
    assert {(lead.postcode, lead.city) for lead in sold} <= {
        ("1011", "Amsterdam"),
        ("1012", "Amsterdam"),
    }
    assert len(sold) == 8  # every Amsterdam lead, none of Groningen's
    _, second = batch(30)
    # cached now: one lookup for the whole batch, no table, nothing written
    assert geo_queries(second, "geoplace") == 1
    assert geo_queries(second, "postalcode") == 0
    assert geo_queries(second, "geoplace", "INSERT") == 0


def test_a_batch_of_leads_with_coordinates_costs_no_lookup(areas, new_lead):
    leads = [new_lead() for _ in range(5)]
    with CaptureQueriesContext(connection) as ctx:
        assert lead_points_resolve(leads) == {}
    assert ctx.captured_queries == []


# --- the demo ------------------------------------------------------------------------------


def test_the_demos_solar_leads_posted_with_postcode_and_city_reach_the_buyers_around_them():
    run("seed_demo", "--leads", "120")
    solar = Lead.objects.filter(campaign__slug="solar")
    assert solar.exists() and not solar.exclude(latitude=None).exists()
    premium = Lead.objects.filter(outbound__contract__name="SunPower premium")
    # sold inside its 40 km of Amsterdam (Utrecht is 35 km away, Rotterdam 57 km)
    assert "Amsterdam" in set(premium.values_list("city", flat=True))
    assert set(premium.values_list("city", flat=True)) <= {"Amsterdam", "Utrecht"}
    # nothing was lost for want of coordinates
    for attempt in DistributionAttempt.objects.filter(lead__in=solar):
        assert "no_coordinates" not in json.dumps(attempt.rules_tried)
    east = Lead.objects.filter(outbound__contract__name="East Coast residential")
    assert set(east.values_list("city", flat=True)) <= {"New York", "Boston"}
    assert east.exists()
