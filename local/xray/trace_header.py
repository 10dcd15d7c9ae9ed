"""X-Ray trace headers as API Gateway with active tracing writes them into a request."""

from __future__ import annotations

import time
import uuid


def trace_header(incoming: str | None) -> str:
    """Continue the caller's X-Ray trace if it sent one, as API Gateway does; otherwise start one."""
    if incoming and "Root=" in incoming:
        fields = dict(part.split("=", 1) for part in incoming.split(";") if "=" in part)
        sampled = fields.get("Sampled", "1")
        return f"Root={fields['Root']};Parent={uuid.uuid4().hex[:16]};Sampled={sampled}"
    return new_trace_header()


def new_trace_header() -> str:
    """An X-Ray trace header for a new, sampled trace (as API Gateway with tracing starts one)."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"
