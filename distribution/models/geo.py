"""Where a place is: the offline postal-code table (GeoNames' format, loaded by
`manage.py load_postcodes`) and the cache of every place looked up for a lead without
coordinates (one row per normalised country + postcode + city, found or not)."""

from __future__ import annotations

from django.db import models


class PostalCode(models.Model):
    """One row of a GeoNames postal-code file (country, postal code, place, coordinates)."""

    country = models.CharField(max_length=2)
    postal_code = models.CharField(max_length=20)
    # Upper case without spaces or dashes: what a lead's postcode is compared with.
    postal_key = models.CharField(max_length=20)
    place_name = models.CharField(max_length=180, blank=True)
    # Case-folded, single-spaced place name: what a lead's city is compared with.
    place_key = models.CharField(max_length=180, blank=True)
    admin_name1 = models.CharField(max_length=100, blank=True)
    latitude = models.FloatField()
    longitude = models.FloatField()
    accuracy = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["country", "postal_key"], name="postalcode_country_key"),
            models.Index(fields=["country", "place_key"], name="postalcode_country_place"),
        ]
        verbose_name = "postal code"

    def __str__(self) -> str:
        return f"{self.country} {self.postal_code} {self.place_name}".strip()


class PlaceSource(models.TextChoices):
    TABLE = "table", "Postal-code table"
    GEOCODER = "geocoder", "Geocoder"
    UNKNOWN = "unknown", "Not found"


class GeoPlace(models.Model):
    """A place looked up once: its coordinates (None when nobody knew it) and where they
    came from. Selection reads these rows, one query per batch of leads."""

    key = models.CharField(max_length=300, unique=True)
    country = models.CharField(max_length=2, blank=True)
    postcode = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=120, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=PlaceSource.choices)
    looked_up_at = models.DateTimeField()

    class Meta:
        verbose_name = "geocoded place"

    def __str__(self) -> str:
        where = " ".join(p for p in (self.country, self.postcode, self.city) if p)
        return f"{where}: {self.latitude}, {self.longitude}" if self.found else f"{where}: unknown"

    @property
    def found(self) -> bool:
        return self.latitude is not None and self.longitude is not None
