"""Geography of service areas: bounding boxes, geodesic distances and the proven bounds
that let the cheap great-circle value stand in for geopy's geodesic almost everywhere."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from geopy.distance import geodesic

if TYPE_CHECKING:
    from distribution.engine.marketplace.types import ContractSnapshot, LocationPoint

# Great-circle distance on the mean-radius sphere vs the WGS84 geodesic: the ratio
# geodesic / great-circle lies in [0.99442, 1.00449] (the extreme radii of curvature of the
# ellipsoid). The margins below are wider still, so the cheap spherical value gives rigorous
# bounds and geopy's geodesic (about 0.2 ms a call) only runs where the bounds cannot decide.
EARTH_MEAN_KM = 6371.0088
SPHERE_LOW = 0.99
SPHERE_HIGH = 1.01
# Absolute slack (km) for floating-point noise at tiny distances (geodesics are ~nm exact).
SLACK_KM = 1e-6


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A lat/lon box that contains every point within a distance of its centre."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    def contains(self, lat: float, lon: float) -> bool:
        """True when the point lies in the box (edges included)."""
        return self.lat_min <= lat <= self.lat_max and self.lon_min <= lon <= self.lon_max


def bounding_box(lat: float, lon: float, km: float) -> BoundingBox:
    """A conservative box around (lat, lon) holding every point within `km` (geodesic).

    1. Inflate the radius by the sphere/ellipsoid margin so the spherical cap contains the
       geodesic disc, and turn it into an angle on the mean-radius sphere.
    2. Latitude extent: centre ± that angle (clamped to ±90).
    3. Longitude extent: the exact extent of a spherical cap, asin(sin r / cos φ); a cap that
       reaches a pole or crosses the antimeridian gets the full -180..180 range, so the box
       is always one plain SQL range per axis.
    """
    r = max(0.0, km) / (SPHERE_LOW * EARTH_MEAN_KM)
    dlat = math.degrees(r)
    lat_min, lat_max = lat - dlat, lat + dlat
    if lat_min <= -90.0 or lat_max >= 90.0:
        return BoundingBox(max(lat_min, -90.0), min(lat_max, 90.0), -180.0, 180.0)
    ratio = math.sin(r) / math.cos(math.radians(lat))
    if ratio >= 1.0:
        return BoundingBox(lat_min, lat_max, -180.0, 180.0)
    dlon = math.degrees(math.asin(ratio))
    lon_min, lon_max = lon - dlon, lon + dlon
    if lon_min < -180.0 or lon_max > 180.0:
        return BoundingBox(lat_min, lat_max, -180.0, 180.0)
    return BoundingBox(lat_min, lat_max, lon_min, lon_max)


def lower_bound_km(spherical_km: float) -> float:
    """A proven lower bound of the geodesic distance from the great-circle one."""
    bound = spherical_km * SPHERE_LOW - SLACK_KM
    return bound if bound > 0.0 else 0.0


def distance_km(lat: float, lon: float, point: LocationPoint) -> float:
    """Geodesic (WGS84) distance in km between a coordinate and a location."""
    return float(geodesic((lat, lon), (point.lat, point.lon)).km)


def great_circle_km(lat1: float, cos1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine km with the lead's latitude cosine precomputed; inputs in radians."""
    s_lat = math.sin((lat2 - lat1) * 0.5)
    s_lon = math.sin((lon2 - lon1) * 0.5)
    h = s_lat * s_lat + cos1 * math.cos(lat2) * s_lon * s_lon
    return 2.0 * EARTH_MEAN_KM * math.asin(math.sqrt(h) if h < 1.0 else 1.0)


def nearest_location_km(contract: ContractSnapshot, lat: float, lon: float) -> float | None:
    """Geodesic distance from a point to the nearest location of the contract's company."""
    if not contract.locations:
        return None
    return min(distance_km(lat, lon, loc) for loc in contract.locations)


# WGS84, in km: the meridian radius of curvature M(φ) and the prime-vertical one N(φ)
# both grow from the equator to the poles, and M ≤ N.
_WGS84_A = 6378.137
_WGS84_E2 = (1 / 298.257223563) * (2 - 1 / 298.257223563)
_ROUNDING = 1e-9  # relative floating-point allowance on top of the proven ratios


def curvature_bounds(
    abs_lat: float, abs_lats: np.ndarray, theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, factors that turn the great-circle km (mean-radius sphere) into proven
    lower and upper bounds of the WGS84 geodesic, much tighter than the global ratios.

    The ellipsoid's line element is sqrt(M² dφ² + N² cos²φ dλ²), so along any path it lies
    between min(M, N) and max(M, N) times the unit sphere's. The geodesic is therefore at
    least M(φ_lo)·θ (its image on the sphere is no shorter than the central angle θ) and at
    most N(φ_hi)·θ (the great-circle path drawn on the ellipsoid is no shorter than it).
    Both paths stay within 1.02·θ of each end's latitude (a path of length d moves at most
    d / M_min in latitude, and d ≤ 1.0045 · R·θ), which bounds φ_lo and φ_hi.
    """
    reach = 1.02 * theta
    lo = np.clip(np.minimum(abs_lat, abs_lats) - reach, 0.0, math.pi / 2)
    hi = np.clip(np.maximum(abs_lat, abs_lats) + reach, 0.0, math.pi / 2)
    s_lo = 1.0 - _WGS84_E2 * np.sin(lo) ** 2
    s_hi = 1.0 - _WGS84_E2 * np.sin(hi) ** 2
    meridian = _WGS84_A * (1.0 - _WGS84_E2) / (s_lo * np.sqrt(s_lo))
    vertical = _WGS84_A / np.sqrt(s_hi)
    return (
        meridian / EARTH_MEAN_KM * (1.0 - _ROUNDING),
        vertical / EARTH_MEAN_KM * (1.0 + _ROUNDING),
    )
