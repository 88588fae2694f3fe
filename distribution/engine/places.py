"""Places of leads without coordinates, normalised so one place is looked up once.

Pure functions: a lead's country, postcode and city become one cache key, and the postal
codes an offline table may know the postcode under (GeoNames files hold the full code for
some countries and only its first part for others: NL `1011`, GB `SW1A`, CA `M5V`)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
_SPACES = re.compile(r"\s+")
_LEADING_DIGITS = re.compile(r"^(\d{3,})[A-Z]+$")


@dataclass(frozen=True, slots=True)
class Place:
    """A lead's place as sellers send it, normalised: country (ISO-2, upper case), postcode
    (upper case, letters and digits only) and city (case-folded, single-spaced)."""

    country: str
    postcode: str
    city: str

    @property
    def key(self) -> str:
        """The cache key of the place: one row per key, looked up once."""
        return f"{self.country}|{self.postcode}|{self.city}"

    def postal_candidates(self, raw_postcode: str = "") -> tuple[str, ...]:
        """Postal keys a table may hold this postcode under, the most precise first: the
        whole code; the part before a space or dash (GB outward codes, CA FSAs, NL
        `1011 AB`); the leading digits of digits-then-letters (NL `1011AB`)."""
        if not self.postcode:
            return ()
        out = [self.postcode]
        head = re.split(r"[\s-]+", raw_postcode.strip().upper(), maxsplit=1)[0]
        head = _NOT_ALNUM.sub("", head)
        if head and head not in out:
            out.append(head)
        digits = _LEADING_DIGITS.match(self.postcode)
        if digits and digits.group(1) not in out:
            out.append(digits.group(1))
        return tuple(out)


def postal_key(postcode: str | None) -> str:
    """A postcode as compared: upper case, letters and digits only."""
    return _NOT_ALNUM.sub("", (postcode or "").upper())


def place_key(name: str | None) -> str:
    """A place name as compared: NFKC, case-folded, single-spaced."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", name or "").casefold()).strip()


def place_of(country: str | None, postcode: str | None, city: str | None) -> Place | None:
    """The normalised place, or None when there is nothing to look up (neither postcode
    nor city: a country alone is no service-area point)."""
    place = Place(
        country=(country or "").strip().upper()[:2],
        postcode=postal_key(postcode),
        city=place_key(city),
    )
    if not place.postcode and not place.city:
        return None
    return place
