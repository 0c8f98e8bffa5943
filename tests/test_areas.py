"""The areas table, a location pin's nearest area, and area names in a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import areas
from bot.importers.demo_data import AREAS as DEMO_AREAS

#: Kidwai Nagar's centre in the table, and a point about 500 m east of it.
KIDWAI = (26.4268, 80.3275)
NEAR_KIDWAI = (26.4268, 80.3325)


def test_every_area_of_the_consumer_data_has_a_centre_in_kanpur() -> None:
    table = areas.read_areas()
    assert {a.name for a in table} == set(DEMO_AREAS)
    # Kanpur lies within about 15 km of 26.45 N, 80.33 E.
    for area in table:
        assert areas.distance_km(area.latitude, area.longitude, 26.45, 80.33) < 15, area


def test_distance_is_the_great_circle_distance() -> None:
    assert areas.distance_km(*KIDWAI, *KIDWAI) == 0
    # One degree of latitude is about 111.2 km anywhere.
    assert areas.distance_km(26.0, 80.0, 27.0, 80.0) == pytest.approx(111.2, abs=0.1)
    assert areas.distance_km(*KIDWAI, *NEAR_KIDWAI) == pytest.approx(0.5, abs=0.05)


def test_a_pin_maps_to_the_nearest_area() -> None:
    nearest = areas.nearest_area(*NEAR_KIDWAI)
    assert nearest is not None and nearest.name == "Kidwai Nagar"
    chakeri = areas.nearest_area(26.4105, 80.3990)
    assert chakeri is not None and chakeri.name == "Chakeri"


def test_a_pin_far_from_every_area_is_in_none() -> None:
    # Lucknow, 75 km away, is not forced onto Kanpur's nearest area.
    assert areas.nearest_area(26.8467, 80.9462) is None
    # 11 km south of Naubasta, the southernmost centre.
    assert areas.nearest_area(26.30, 80.32) is None
    assert areas.nearest_area(26.30, 80.32, max_km=12) is not None


@pytest.mark.parametrize(
    ("lat", "lon"), [(91.0, 80.0), (26.0, 181.0), (float("nan"), 80.0), (26.0, float("inf"))]
)
def test_a_pin_off_the_earth_is_in_no_area(lat: float, lon: float) -> None:
    assert not areas.valid_coordinates(lat, lon)
    assert areas.nearest_area(lat, lon) is None


def test_a_bad_row_in_the_table_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "areas.csv"
    path.write_text(
        "discom,area,latitude,longitude\nKESCO,Panki,26.46,80.25\nKESCO,Juhi,north,80\n"
    )
    with pytest.raises(areas.BadAreasTable, match="line 3"):
        areas.read_areas(path)
    path.write_text("discom,area,latitude,longitude\nKESCO,Juhi,126.4,80.3\n")
    with pytest.raises(areas.BadAreasTable, match="line 2"):
        areas.read_areas(path)


def test_known_area_ignores_case_spacing_and_dots() -> None:
    names = ["Kidwai Nagar", "Gumti No. 5"]
    assert areas.known_area("kidwai  nagar", names) == "Kidwai Nagar"
    assert areas.known_area("GUMTI NO 5", names) == "Gumti No. 5"
    assert areas.known_area("Kidwai", names) is None
    assert areas.known_area(None, names) is None


def test_area_in_text_finds_whole_names_only() -> None:
    names = ["Juhi", "Juhi Lal Colony", "Barra"]
    assert areas.area_in_text("juhi lal colony me light nahi", names) == "Juhi Lal Colony"
    assert areas.area_in_text("Barra-2 me bijli gayi", names) == "Barra"
    assert areas.area_in_text("Barrage ke paas", names) is None
    assert areas.area_in_text("light nahi hai", names) is None
