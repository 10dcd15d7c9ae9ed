"""A booked span's stored form (one string per booking in each busy block it touches) gives back
exactly the span, whatever the customer's id holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.common.calendar import BookedSpan
from services.common.calendar_table import booked_from, span_of

INSTANTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC))


@given(
    INSTANTS,
    st.integers(0, 1440),
    st.integers(0, 480),
    st.text(min_size=1, max_size=128),
    st.integers(1, 10**6),
    st.booleans(),
)
def test_a_span_reads_back_as_it_was_written(
    start: datetime, minutes: int, buffer: int, customer: str, version: int, whole: bool
) -> None:
    session = start.replace(microsecond=0) if whole else start  # bookings start on whole seconds; others round-trip too
    span = BookedSpan(
        "bkg_" + "1" * 48,
        "svc_" + "2" * 32,
        customer,  # any text: "|" and all
        session,
        session - timedelta(minutes=buffer),
        session + timedelta(minutes=minutes + buffer),
        version,
        "2026-11-30T09:00:00Z",
    )
    stored = span_of(span)
    assert isinstance(stored, str)
    assert booked_from(span.booking_id, stored) == span


def test_the_stored_form_is_short() -> None:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    span = BookedSpan("bkg_1", "svc_2", "cust", start, start, start + timedelta(minutes=45), 1, "2026-11-30T09:00:00Z")
    assert span_of(span) == "1796115600|1796115600|1796118300|1|svc_2|2026-11-30T09:00:00Z|cust"
