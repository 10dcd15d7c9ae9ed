"""The emulator's time, moved with the local stack's clock: `PUT /_clock {"offsetSeconds": N}`.

The stack tells the emulator each new offset (`local/clock.py`); from then on everything in the
emulator's process reads the moved time: stream records' `ApproximateCreationDateTime`, TTL expiry
(`time_to_live.py`), timestamps moto writes. `GET /_clock` answers the offset in force.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from local.clock import ProcessTime

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ClockControl:
    """A WSGI layer that answers `/_clock` and passes everything else on."""

    def __init__(self, app: WSGIApp, process_time: ProcessTime | None = None) -> None:
        self._app = app
        self.time = process_time or ProcessTime()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/_clock":
            return self._app(environ, start_response)
        if environ.get("REQUEST_METHOD") == "PUT":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                offset = float(json.loads(environ["wsgi.input"].read(length))["offsetSeconds"])
            except (ValueError, KeyError, TypeError) as error:
                start_response("400 Bad Request", [("Content-Type", "application/json")])
                return [json.dumps({"message": f"expected {{offsetSeconds: number}}: {error}"}).encode()]
            if offset < self.time.offset:
                start_response("400 Bad Request", [("Content-Type", "application/json")])
                return [json.dumps({"message": "the clock never goes back"}).encode()]
            self.time.move_to(offset)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"offsetSeconds": self.time.offset}).encode()]
