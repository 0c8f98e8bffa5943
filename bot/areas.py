"""Where a power cut is: the discom's areas, a WhatsApp location pin's nearest area, area names.

The areas table (``bot/areas.csv``: discom, area, latitude, longitude) gives each area of the
consumer data a centre. The centres are approximate: written by hand from public maps of Kanpur,
good to a kilometre or two, never surveyed. They serve one purpose: to turn a location pin into
the area a lineman's team knows by name. A discom with its substations' coordinates should
replace the file (same columns); an area missing from it can still be named in a message.

A pin farther than :data:`MAX_PIN_KM` from every centre is outside the areas the bot knows, and
is not forced onto the nearest one.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: The areas table shipped with the package.
AREAS_CSV = Path(__file__).with_name("areas.csv")
#: Kilometres: a pin farther than this from every area centre is in no known area. Kanpur's
#: areas are 1–4 km across; 5 km keeps a pin on the city's edge, not one in the next town.
MAX_PIN_KM = 5.0
_EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Area:
    """An area of a discom and the approximate centre of it."""

    discom: str
    name: str
    latitude: float
    longitude: float


class BadAreasTable(ValueError):
    """The areas table has a row that is not an area with a centre (the text says which)."""


def read_areas(path: Path = AREAS_CSV) -> tuple[Area, ...]:
    """The rows of an areas table; :class:`BadAreasTable` names the first bad line."""
    areas = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                area = Area(
                    discom=row["discom"].strip(),
                    name=row["area"].strip(),
                    latitude=float(row["latitude"]),
                    longitude=float(row["longitude"]),
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise BadAreasTable(f"{path.name} line {line}: {exc}") from exc
            if not valid_coordinates(area.latitude, area.longitude) or not area.name:
                raise BadAreasTable(f"{path.name} line {line}: not a place")
            areas.append(area)
    return tuple(areas)


@cache
def areas() -> tuple[Area, ...]:
    """The shipped areas table, read once per process."""
    return read_areas()


def valid_coordinates(latitude: float, longitude: float) -> bool:
    """True for a latitude and longitude on Earth (finite, within ±90 and ±180)."""
    return (
        math.isfinite(latitude)
        and math.isfinite(longitude)
        and -90 <= latitude <= 90
        and -180 <= longitude <= 180
    )


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points, in kilometres (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def nearest_area(
    latitude: float,
    longitude: float,
    table: Iterable[Area] | None = None,
    max_km: float = MAX_PIN_KM,
) -> Area | None:
    """The area whose centre is nearest the pin, if within ``max_km``; else None."""
    if not valid_coordinates(latitude, longitude):
        return None
    best: tuple[float, Area] | None = None
    for area in areas() if table is None else table:
        km = distance_km(latitude, longitude, area.latitude, area.longitude)
        if best is None or km < best[0]:
            best = (km, area)
    return best[1] if best is not None and best[0] <= max_km else None


#: What separates words in a place name: anything but letters, digits and Devanagari signs.
_NOT_WORD = re.compile(r"[^\w\u0900-\u097F]+")


def _key(name: str) -> str:
    return _NOT_WORD.sub(" ", name).strip().casefold()


def known_area(name: str | None, names: Iterable[str]) -> str | None:
    """``name`` as ``names`` spell it (case and spacing aside), or None if it is not among them."""
    if not name:
        return None
    wanted = _key(name)
    return next((known for known in names if _key(known) == wanted), None)


def area_in_text(text: str, names: Iterable[str]) -> str | None:
    """The longest of ``names`` that the text mentions as whole words, else None.

    For areas of the consumer data the NLU's lookup table does not list yet.
    """
    haystack = f" {_key(text)} "
    found = [n for n in names if n.strip() and f" {_key(n)} " in haystack]
    return max(found, key=len) if found else None


__all__ = [
    "AREAS_CSV",
    "MAX_PIN_KM",
    "Area",
    "BadAreasTable",
    "area_in_text",
    "areas",
    "distance_km",
    "known_area",
    "nearest_area",
    "read_areas",
    "valid_coordinates",
]
