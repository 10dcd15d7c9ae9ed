"""Traces as the X-Ray console shows them: a list of recent traces, and one trace as a waterfall.

The functions send one X-Ray subsegment document per span (services/common/xray_exporter.py). A
trace's spans form a tree by `parent_id`; the spans whose parent is not among them hang off the
function's segment, which Lambda writes in AWS and nobody writes locally, so they are the roots. The
audit consumer's record spans link to the request span that made the change (`metadata.otel.links`):
the waterfall follows those links both ways, so a booking's request shows the stream delivery and the
audit consumer's work after it, and the consumer's trace shows the request it came from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Document = Mapping[str, Any]


def _status(document: Document) -> str:
    for flag in ("fault", "throttle", "error"):
        if document.get(flag):
            return flag
    return "ok"


def _detail(document: Document) -> str:
    aws = document.get("aws") or {}
    if document.get("namespace") == "aws":
        target = aws.get("table_name") or aws.get("bucket_name") or ""
        retries = f" · {aws['retries']} retries" if aws.get("retries") else ""
        return f"{aws.get('operation', '')} {target}{retries}".strip()
    annotations = document.get("annotations") or {}
    return " ".join(f"{key}={value}" for key, value in annotations.items())


def _service(document: Document) -> str:
    resource = ((document.get("metadata") or {}).get("otel") or {}).get("resource") or {}
    return str(resource.get("service.name", ""))


def _links(document: Document) -> list[str]:
    links = ((document.get("metadata") or {}).get("otel") or {}).get("links") or []
    return [str(link["trace_id"]) for link in links if link.get("trace_id")]


def summaries(traces: Mapping[str, Sequence[Document]], limit: int = 50) -> list[dict[str, Any]]:
    """The most recent traces first: when, how long, what the root spans were, whether anything failed."""
    found: list[dict[str, Any]] = []
    for trace_id, documents in traces.items():
        if not documents:
            continue
        ids = {document["id"] for document in documents}
        roots = [d for d in documents if d.get("parent_id") not in ids]
        start = min(float(d["start_time"]) for d in documents)
        end = max(float(d.get("end_time", d["start_time"])) for d in documents)
        statuses = {_status(d) for d in documents}
        found.append(
            {
                "traceId": trace_id,
                "start": start * 1000,
                "durationMs": round((end - start) * 1000, 2),
                "root": ", ".join(sorted({str(r["name"]) for r in roots})),
                "service": ", ".join(sorted({_service(r) for r in roots} - {""})),
                "spans": len(documents),
                "status": next((s for s in ("fault", "throttle", "error") if s in statuses), "ok"),
            }
        )
    found.sort(key=lambda summary: summary["start"], reverse=True)
    return found[:limit]


def waterfall(trace_id: str, traces: Mapping[str, Sequence[Document]]) -> dict[str, Any]:
    """One trace's spans in tree order with offsets from its start, followed by the traces linked to it."""
    linked_from = [
        t for t, documents in traces.items() if t != trace_id and any(trace_id in _links(d) for d in documents)
    ]
    linked_to = sorted({t for d in traces.get(trace_id, []) for t in _links(d)} - {trace_id})
    included = [trace_id, *linked_to, *linked_from]
    documents = [d for t in included for d in traces.get(t, [])]
    if not documents:
        return {"traceId": trace_id, "spans": [], "linked": []}
    start = min(float(d["start_time"]) for d in documents)
    end = max(float(d.get("end_time", d["start_time"])) for d in documents)
    rows: list[dict[str, Any]] = []
    for other in sorted(
        included, key=lambda t: min(float(d["start_time"]) for d in traces.get(t, [{"start_time": 0}]))
    ):
        rows += _tree(other, traces.get(other, []), start)
    return {
        "traceId": trace_id,
        "start": start * 1000,
        "durationMs": round((end - start) * 1000, 2),
        "spans": rows,
        "linked": [t for t in included if t != trace_id],
    }


def _tree(trace_id: str, documents: Sequence[Document], origin: float) -> list[dict[str, Any]]:
    ids = {document["id"] for document in documents}
    children: dict[str | None, list[Document]] = defaultdict(list)
    for document in documents:
        parent = document.get("parent_id")
        children[parent if parent in ids else None].append(document)
    rows: list[dict[str, Any]] = []

    def visit(siblings: Iterable[Document], depth: int) -> None:
        for document in sorted(siblings, key=lambda d: float(d["start_time"])):
            begin = float(document["start_time"])
            rows.append(
                {
                    "traceId": trace_id,
                    "id": document["id"],
                    "name": str(document.get("name", "")),
                    "service": _service(document),
                    "kind": ((document.get("metadata") or {}).get("otel") or {}).get("kind", ""),
                    "depth": depth,
                    "offsetMs": round((begin - origin) * 1000, 2),
                    "durationMs": round((float(document.get("end_time", begin)) - begin) * 1000, 2),
                    "status": _status(document),
                    "detail": _detail(document),
                    "links": _links(document),
                }
            )
            visit(children.get(document["id"], []), depth + 1)

    visit(children[None], 0)
    return rows
