"""mypy checks `msgspec.structs.replace` calls against the Struct's fields (tests/mypy_msgspec.py)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]

SOURCE = """
from msgspec import Struct
from msgspec.structs import replace


class Booking(Struct, frozen=True):
    booking_id: str
    version: int


booking = Booking("bkg_1", 1)
replace(booking, version=2)
replace(booking, versoin=2)
replace(booking, version="2")
"""


def test_a_misspelt_field_or_a_wrong_type_in_replace_fails_type_checking(tmp_path: Path) -> None:
    (tmp_path / "sample.py").write_text(SOURCE)
    report, _, status = api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--no-incremental", str(tmp_path / "sample.py")]
    )
    errors = [line.split(": error: ")[1] for line in report.splitlines() if ": error: " in line]
    assert status == 1
    assert len(errors) == 2, report
    assert 'Unexpected keyword argument "versoin"' in errors[0]
    assert 'Argument "version" to "replace" of "Booking" has incompatible type "str"' in errors[1]
