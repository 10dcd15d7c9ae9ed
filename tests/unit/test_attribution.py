"""What a request's writes are attributed to (services/common/http.py): API Gateway's request id,
and the trace as a lead, marked when the caller named it."""

from __future__ import annotations

from services.common.http import trace_started_before


def test_a_trace_begun_before_the_request_reached_the_gateway_is_the_clients() -> None:
    received_ms = 1_795_600_000_000
    ours = f"1-{1_795_600_000:08x}-{'0' * 24}"
    assert not trace_started_before(ours, received_ms)
    assert not trace_started_before(f"1-{1_795_599_999:08x}-{'0' * 24}", received_ms)  # the same second, near enough
    assert trace_started_before(f"1-{1_795_596_400:08x}-{'0' * 24}", received_ms)  # an hour before
    assert trace_started_before(f"1-{1_795_603_600:08x}-{'0' * 24}", received_ms)  # or after: not API Gateway's
    assert trace_started_before("not-a-trace", received_ms) and trace_started_before("1-zz-00", received_ms)
    assert not trace_started_before("", received_ms) and not trace_started_before(ours, None)  # untraced, or no time
