"""`/_ops`: the operations console of the local stack, what an on-call engineer opens in AWS.

- the CloudWatch dashboard of `dashboards/` (after CloudFormation's substitutions), answered from
  local data (`local/cloudwatch/dashboard.py`) and drawn in the browser with plotly.js, served from the plotly
  package so nothing is fetched from the internet;
- every alarm of the templates with its state, reason and state history (`local/cloudwatch/alarms.py`);
- recent traces and one trace as a waterfall, following span links from a request to the audit
  consumer's work (`local/xray/traces.py`);
- recent log lines of the functions, filtered by correlation id, booking id or level;
- the fault plan of the emulator, read and set from the page (`/_local/faults`);
- the runbooks of `docs/runbooks/`, which the dashboard's text widget and the alarm descriptions link.

The page itself is static (`local/console/page/`); it polls the JSON routes below and redraws.
"""

from __future__ import annotations

import importlib.util
import json
import mimetypes
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from deploy.templates import ROOT
from local.apigateway.gateway import Gateway
from local.apigateway.http_messages import HttpRequest, HttpResponse, json_response
from local.cloudwatch.dashboard import Sources, markdown_html, render
from local.cloudwatch.logs import LogEvent
from local.xray import traces
from local.xray.daemon import XRayDaemon

PAGE = Path(__file__).resolve().parent / "page"
RUNBOOKS = ROOT / "docs" / "runbooks"


def _plotly_js() -> Path:
    """plotly.js as the plotly package ships it (found without importing the Python library)."""
    spec = importlib.util.find_spec("plotly")
    assert spec is not None and spec.origin is not None, "plotly is a dev dependency: run make venv"
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


PLOTLY_JS = _plotly_js()
RANGES_MINUTES = (5, 15, 60, 180, 720)
LOG_LINES = 200


@dataclass
class OpsConsole:
    body: dict[str, Any]
    sources: Sources
    xray: XRayDaemon | None
    now: Callable[[], float] = time.time  # the stack's clock: the dashboard's ranges end at its now

    def register(self, gateway: Gateway) -> None:
        gateway.add_local_route("GET", "/_ops", self._page)
        gateway.add_local_route("GET", "/_ops/assets/*", self._asset)
        gateway.add_local_route("GET", "/_ops/dashboard", self._dashboard)
        gateway.add_local_route("GET", "/_ops/alarms", self._alarms)
        gateway.add_local_route("GET", "/_ops/traces", self._traces)
        gateway.add_local_route("GET", "/_ops/logs", self._logs)
        gateway.add_local_route("GET", "/_ops/runbooks/*", self._runbook)

    # --- the page and its assets -----------------------------------------------------------------

    def _page(self, _request: HttpRequest) -> HttpResponse:
        return _file(PAGE / "index.html")

    def _asset(self, request: HttpRequest) -> HttpResponse:
        name = urlsplit(request.target).path.removeprefix("/_ops/assets/")
        if name == "plotly.min.js":
            return _file(PLOTLY_JS)
        path = PAGE / name
        if "/" in name or not path.is_file():
            return _json(404, {"message": f"no asset {name!r}"})
        return _file(path)

    def _runbook(self, request: HttpRequest) -> HttpResponse:
        name = urlsplit(request.target).path.removeprefix("/_ops/runbooks/") or "README.md"
        path = RUNBOOKS / name
        if "/" in name or not name.endswith(".md") or not path.is_file():
            return _json(404, {"message": f"no runbook {name!r}"})
        html = _RUNBOOK_PAGE.format(title=name, body=markdown_html(path.read_text(encoding="utf-8")))
        return HttpResponse(200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())

    # --- the data ------------------------------------------------------------------------------------

    def _dashboard(self, request: HttpRequest) -> HttpResponse:
        """`?minutes=60`: every widget of the dashboard with its data for the last `minutes`."""
        minutes = _int(request, "minutes", 60)
        if minutes not in RANGES_MINUTES:
            return _json(400, {"message": f"minutes must be one of {list(RANGES_MINUTES)}", "field": "minutes"})
        end = self.now()
        widgets = render(self.body, self.sources, end - minutes * 60, end)
        return _json(200, {"start": (end - minutes * 60) * 1000, "end": end * 1000, "widgets": widgets})

    def _alarms(self, _request: HttpRequest) -> HttpResponse:
        alarms = self.sources.alarms
        listed = []
        for status in alarms.status() if alarms else []:
            properties = alarms.alarms[status["name"]].properties if alarms else {}
            listed.append({**status, "description": properties.get("AlarmDescription", "")})
        errors = alarms.errors[-5:] if alarms else []
        return _json(200, {"alarms": listed, "evaluationErrors": errors})

    def _traces(self, request: HttpRequest) -> HttpResponse:
        """The recent traces; with `?traceId=`, that trace as a waterfall with the traces linked to it."""
        kept = self.xray.traces() if self.xray else {}
        trace_id = _query(request).get("traceId")
        if trace_id:
            answer = traces.waterfall(trace_id, kept)
            return _json(200 if answer["spans"] else 404, answer)
        return _json(200, {"traces": traces.summaries(kept)})

    def _logs(self, request: HttpRequest) -> HttpResponse:
        """The functions' recent lines, newest first, filtered by `correlationId`, `bookingId` and `level`."""
        query = _query(request)
        wanted = {key: query[key] for key in ("correlationId", "bookingId", "level", "traceId") if query.get(key)}
        found: list[dict[str, Any]] = []
        events = [event for group in self.sources.log_groups.values() for event in group()]
        for event in sorted(events, key=lambda e: e.timestamp, reverse=True):
            fields = event.fields()
            if all(_matches(key, value, fields) for key, value in wanted.items()):
                found.append(_log_line(event, fields))
                if len(found) >= LOG_LINES:
                    break
        return _json(200, {"lines": found})


def _matches(key: str, wanted: str, fields: Mapping[str, Any]) -> bool:
    if key == "correlationId":
        ids = ("correlation_id", "function_request_id", "record.requestId")  # API request, invocation, report
        return wanted in {fields.get(name) for name in ids}
    if key == "bookingId":
        return wanted in {fields.get("bookingId"), fields.get("entityId")}
    if key == "traceId":
        return wanted == fields.get("xray_trace_id")
    return str(fields.get("level", "")).upper() == wanted.upper()


def _log_line(event: LogEvent, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "timestamp": event.timestamp * 1000,
        "group": event.log_group,
        "level": fields.get("level") or ("REPORT" if fields.get("type") == "platform.report" else ""),
        "correlationId": fields.get("correlation_id"),
        "bookingId": fields.get("bookingId") or fields.get("entityId"),
        "traceId": fields.get("xray_trace_id"),
        "message": _summary(event, fields),
        "raw": event.message,
    }


def _summary(event: LogEvent, fields: Mapping[str, Any]) -> str:
    """What a line says, in a few words: the logger's message, a platform event, or the EMF metrics."""
    if "message" in fields:
        return str(fields["message"])
    kind = str(fields.get("type", ""))
    if kind == "platform.report":
        init = fields.get("record.metrics.initDurationMs")
        return (
            f"REPORT {fields.get('record.requestId')}: {fields.get('record.metrics.durationMs')} ms"
            f" (billed {fields.get('record.metrics.billedDurationMs')} ms,"
            f" max memory {fields.get('record.metrics.maxMemoryUsedMB')} MB"
            + (f", init {init} ms)" if init is not None else ")")
        )
    if kind.startswith("platform."):
        return f"{kind} {fields.get('record.requestId', '')}".strip()
    if "_aws.CloudWatchMetrics" in fields:
        directives = json.loads(str(fields["_aws.CloudWatchMetrics"]))
        names = [metric["Name"] for directive in directives for metric in directive.get("Metrics", [])]
        return f"EMF metrics: {', '.join(names)}"
    return event.message


def _query(request: HttpRequest) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlsplit(request.target).query).items()}


def _int(request: HttpRequest, name: str, default: int) -> int:
    try:
        return int(_query(request).get(name, default))
    except ValueError:
        return -1


def _json(status: int, body: Any) -> HttpResponse:
    return json_response(status, body, {"Cache-Control": "no-store"})


def _file(path: Path) -> HttpResponse:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind.endswith("javascript"):
        kind += "; charset=utf-8"
    return HttpResponse(200, {"Content-Type": kind, "Cache-Control": "max-age=300"}, path.read_bytes())


_RUNBOOK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Runbook · {title}</title>
<link rel="stylesheet" href="/_ops/assets/ops.css"></head>
<body class="runbook"><nav><a href="/_ops">← operations console</a> ·
<a href="/_ops/runbooks/README.md">all runbooks</a></nav>
<article>{body}</article></body></html>
"""
