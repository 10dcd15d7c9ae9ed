"""A tape of a function's AWS answers, recorded at botocore's transport and played back in order
instead of sending anything (decision 0016). The handler benchmark times requests on it; the cold
start benchmark replays one first request on it in a fresh interpreter, and a plain boto3 client's
same calls (kept with their parameters) on the same answers.

Imports only what the function (or `import boto3`) has loaded already, so a timed cold start pays
nothing for the tape beyond registering three hooks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Exchange:
    """One HTTP answer botocore received, as it received it."""

    operation: str  # "dynamodb.GetItem"
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # bytes of the request's body (an archived object's size, for the cost model)


@dataclass(frozen=True)
class Call:
    """One API call as the caller made it: a plain client's `getattr(client, method)(**params)`."""

    service: str  # boto3's client name: "dynamodb", "s3"
    method: str  # "transact_write_items"
    params: dict[str, Any]


class _Body:
    """The `raw` botocore reads a response body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class Tape:
    """Records a function's AWS answers (and the calls that asked for them), then plays the answers
    back in order instead of sending anything."""

    def __init__(self) -> None:
        self.mode = "off"
        self.exchanges: list[Exchange] = []
        self.calls: list[Call] = []
        self._next = 0
        self._sent = 0

    def install(self, session: Any = None) -> None:
        """On `session` (a boto3 or a botocore one; by default boto3's default session), before the
        clients are made: the services make theirs lazily, on first use, from their own botocore
        session (`services.common.aws_session.session()`)."""
        if session is None:
            import boto3

            if boto3.DEFAULT_SESSION is None:
                boto3.setup_default_session()
            session = boto3.DEFAULT_SESSION
        events = session.events if hasattr(session, "events") else session.get_component("event_emitter")
        events.register("provide-client-params", self._called)
        events.register("response-received", self._received)
        events.register("before-send", self._send)

    def record(self) -> None:
        self.mode, self.exchanges, self.calls = "record", [], []

    def replay(self) -> None:
        self.mode, self._next = "replay", 0

    def stop(self) -> None:
        """Let calls through to AWS again (setting up, reading the stream)."""
        self.mode = "off"

    def rewind(self) -> None:
        """Back to the first answer, checking the last call used every answer."""
        if self._next != len(self.exchanges):
            raise RuntimeError(f"the replay made {self._next} AWS calls; the recording {len(self.exchanges)}")
        self._next = 0

    @staticmethod
    def _operation(event_name: str) -> str:
        return ".".join(event_name.split(".")[-2:])

    def _called(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        # The first event of a call, before botocore's own handlers adjust the parameters.
        if self.mode == "record":
            from botocore import xform_name

            service = model.service_model.service_name
            self.calls.append(Call(service, xform_name(model.name), copy.deepcopy(params)))

    def _received(self, event_name: str, response_dict: dict[str, Any] | None, **_: Any) -> None:
        if self.mode != "record" or response_dict is None:
            return
        body = response_dict.get("body", b"")
        if not isinstance(body, bytes):
            raise RuntimeError(f"{event_name}: a streamed answer cannot be replayed")
        headers = {str(k): str(v) for k, v in response_dict["headers"].items()}
        operation = self._operation(event_name)
        self.exchanges.append(Exchange(operation, response_dict["status_code"], headers, body, self._sent))

    def _send(self, event_name: str, request: Any, **_: Any) -> Any:
        if self.mode == "record":
            headers = request.headers
            self._sent = int(headers.get("X-Amz-Decoded-Content-Length") or headers.get("Content-Length") or 0)
        if self.mode != "replay":
            return None
        from botocore.awsrequest import AWSResponse
        from botocore.compat import HTTPHeaders

        operation = self._operation(event_name)
        if self._next >= len(self.exchanges) or self.exchanges[self._next].operation != operation:
            expected = self.exchanges[self._next].operation if self._next < len(self.exchanges) else "nothing"
            raise RuntimeError(f"the replay asked for {operation}; the recording has {expected}")
        answer = self.exchanges[self._next]
        self._next += 1
        return AWSResponse(request.url, answer.status, HTTPHeaders.from_dict(answer.headers), _Body(answer.body))


def dump(exchanges: list[Exchange], calls: list[Call]) -> dict[str, Any]:
    """A case's tape in `marshal`'s types (a fresh interpreter loads it without importing anything)."""
    return {
        "exchanges": [[e.operation, e.status, e.headers, e.body, e.sent] for e in exchanges],
        "calls": [[c.service, c.method, c.params] for c in calls],
    }


def load(dumped: dict[str, Any]) -> tuple[list[Exchange], list[Call]]:
    exchanges = [Exchange(op, status, headers, body, sent) for op, status, headers, body, sent in dumped["exchanges"]]
    return exchanges, [Call(service, method, params) for service, method, params in dumped["calls"]]
