"""X-Ray trace headers as API Gateway with active tracing writes them into a request."""

from __future__ import annotations

import time
import uuid


def trace_header(incoming: str | None, now: float | None = None) -> str:
    """Continue the caller's X-Ray trace if it sent one, as API Gateway does; otherwise start one,
    stamped with `now` (the stack's clock), as a root records when its trace began."""
    if incoming and "Root=" in incoming:
        fields = dict(part.split("=", 1) for part in incoming.split(";") if "=" in part)
        sampled = fields.get("Sampled", "1")
        return f"Root={fields['Root']};Parent={uuid.uuid4().hex[:16]};Sampled={sampled}"
    return new_trace_header(now)


def new_trace_header(now: float | None = None) -> str:
    """An X-Ray trace header for a new, sampled trace (as API Gateway with tracing starts one)."""
    root = f"1-{int(time.time() if now is None else now):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"
