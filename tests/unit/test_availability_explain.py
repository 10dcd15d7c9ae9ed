"""Explain (`GET …/slots/explain`): the engine says whether a start is bookable exactly as the search
and the booking decide it, and names every reason that applies; none exactly when it is bookable."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.common.availability import Busy, Hours, LocalInterval, ServiceRules, explain, why_not
from tests.unit.test_availability_properties import SERVICE, scenarios

# Which first refusal of `why_not` each explained reason can stand for.
STANDS_FOR = {
    "OUTSIDE_HOURS": {"OUTSIDE_HOURS", "CLOSED_BY_OVERRIDE"},
    "TOO_SOON": {"TOO_SOON"},
    "TOO_FAR_AHEAD": {"TOO_FAR_AHEAD"},
    "NOT_ON_STEP": {"NOT_ON_STEP"},
    "TAKEN": {"BOOKED", "HELD", "EXTERNAL", "BUFFER"},
}


@given(scenarios(), st.integers(0, 3 * 288), st.sampled_from([0, 0, 250_000]), st.data())
def test_explain_agrees_with_the_search_and_the_booking(
    scenario: tuple[Hours, ServiceRules, list[Busy], datetime, datetime, datetime],
    step: int,
    fraction: int,
    data: st.DataObject,
) -> None:
    """Bookable exactly when the search offers it and a booking takes it; then no reason, else each
    reason only where it applies: the time rules by their own arithmetic, and a collision only with
    busy time it overlaps (a hold's only with a hold)."""
    hours, rules, drawn, window_start, _, now = scenario
    # Some busy spans are holds, and some know where their appointment ends (as a calendar's do).
    busy = [
        b._replace(
            held=data.draw(st.booleans()), core_end=b.end - timedelta(minutes=data.draw(st.sampled_from([0, 5])))
        )
        for b in drawn
    ]
    start = (window_start + timedelta(minutes=5 * step)).replace(second=0, microsecond=fraction)
    bookable, reasons = explain(hours, rules, busy, start, now, SERVICE)
    refused = why_not(hours, rules, busy, start, now, SERVICE)
    assert bookable == (refused is None) == (reasons == [])
    if refused is not None:
        assert STANDS_FOR[refused] & set(reasons), (refused, reasons)
    assert ("TOO_SOON" in reasons) == (start < now + timedelta(minutes=rules.min_notice_minutes))
    assert ("TOO_FAR_AHEAD" in reasons) == (start > now + timedelta(days=rules.max_advance_days))
    padded = (
        start - timedelta(minutes=rules.buffer_before_minutes),
        start + timedelta(minutes=rules.duration_minutes + rules.buffer_after_minutes),
    )
    touching = [b for b in busy if b.start < padded[1] and padded[0] < b.end]
    if not touching:
        assert not {"BOOKED", "HELD", "BUFFER"} & set(reasons)
    if "HELD" in reasons:
        assert any(b.held for b in touching)
    if "BOOKED" in reasons:
        assert any(not b.held for b in touching)


NY = ZoneInfo("America/New_York")
MONDAY = date(2026, 12, 7)
HOURS = Hours(
    NY, {0: [LocalInterval(9 * 60, 12 * 60)]}, {MONDAY + timedelta(days=7): [LocalInterval(10 * 60, 11 * 60)]}
)
RULES = ServiceRules(duration_minutes=30, buffer_after_minutes=10, min_notice_minutes=60, max_advance_days=30)
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


def booked(start: datetime, held: bool = False, service: str = "svc_other") -> Busy:
    """Someone's 30-minute appointment with a 10-minute buffer after."""
    end = start + timedelta(minutes=30)
    return Busy(start, end + timedelta(minutes=10), (service, start), "hld_x" if held else "bkg_x", end, held)


def reasons(
    start: datetime, busy: list[Busy] | None = None, now: datetime = NOW, rules: ServiceRules = RULES
) -> list[str]:
    bookable, found = explain(HOURS, rules, busy or [], start, now, SERVICE)
    assert bookable == (found == [])
    return found


def test_explain_names_each_reason() -> None:
    assert reasons(at(MONDAY, 9)) == []
    assert reasons(at(MONDAY, 8)) == ["OUTSIDE_HOURS"]
    assert reasons(at(MONDAY, 11, 45)) == ["OUTSIDE_HOURS"]  # would not end before the hours do
    assert reasons(at(MONDAY + timedelta(days=7), 9)) == ["CLOSED_BY_OVERRIDE"]
    assert reasons(at(MONDAY, 9), now=at(MONDAY, 8, 30)) == ["TOO_SOON"]
    assert reasons(at(MONDAY, 9), now=at(MONDAY, 9) - timedelta(days=31)) == ["TOO_FAR_AHEAD"]
    assert reasons(at(MONDAY, 9, 5)) == ["NOT_ON_STEP"]
    assert reasons(at(MONDAY, 9), [booked(at(MONDAY, 9, 15))]) == ["BOOKED"]
    assert reasons(at(MONDAY, 9), [booked(at(MONDAY, 9, 15), held=True)]) == ["HELD"]
    # Our buffer after (10 min) reaches their appointment at 9:35; the appointments do not overlap.
    assert reasons(at(MONDAY, 9), [booked(at(MONDAY, 9, 35))]) == ["BUFFER"]
    # Their buffer after (until 9:40) reaches our 9:30.
    assert reasons(at(MONDAY, 9, 30), [booked(at(MONDAY, 9))]) == ["BUFFER"]


def test_explain_names_every_reason_that_applies_in_order() -> None:
    busy = [booked(at(MONDAY, 8, 45), held=True), booked(at(MONDAY, 8))]  # theirs until 8:30, buffer to 8:40
    assert reasons(at(MONDAY, 8, 35), busy, now=at(MONDAY, 8)) == ["OUTSIDE_HOURS", "TOO_SOON", "HELD", "BUFFER"]


def test_explain_counts_the_seats_of_a_session() -> None:
    rules = ServiceRules(duration_minutes=30, max_advance_days=30, capacity=2)
    seat = Busy(at(MONDAY, 9), at(MONDAY, 9, 30), (SERVICE, at(MONDAY, 9)), "bkg_1", at(MONDAY, 9, 30))
    assert reasons(at(MONDAY, 9), [seat], rules=rules) == []
    # A start with a fraction of a second is its whole second, for the seats as for the search
    assert reasons(at(MONDAY, 9).replace(microsecond=250_000), [seat], rules=rules) == []
    assert reasons(at(MONDAY, 9), [seat, seat._replace(booking_id="bkg_2")], rules=rules) == ["BOOKED"]


def test_external_time_is_taken_whole_and_shares_no_seat() -> None:
    """An external block (Calendly's, decision 0030) has no service and no buffers: any overlap with
    its time is EXTERNAL, whatever seats our service has; only our own buffer reaching it is BUFFER."""
    rules = ServiceRules(duration_minutes=30, max_advance_days=30, capacity=3, buffer_after_minutes=10)
    outside = Busy(at(MONDAY, 10), at(MONDAY, 10, 30), None, "ext_1", at(MONDAY, 10, 30), external=True)
    assert reasons(at(MONDAY, 10), [outside], rules=rules) == ["EXTERNAL"]
    assert reasons(at(MONDAY, 10, 10), [outside], rules=rules) == ["NOT_ON_STEP", "EXTERNAL"]
    assert reasons(at(MONDAY, 9, 30), [outside], rules=rules) == ["BUFFER"]  # our 10 minutes after reach 10:00
    assert reasons(at(MONDAY, 10, 30), [outside], rules=rules) == []
    both = [outside, booked(at(MONDAY, 10), held=True)]
    assert reasons(at(MONDAY, 10), both, rules=rules) == ["HELD", "EXTERNAL"]
