"""Lambda's `Invoke` API on the local stack, so that an AWS SDK pointed at it calls the local functions.

`POST /2015-03-31/functions/{FunctionName}/invocations` with the event as the body, as boto3's
`lambda.invoke` sends it (`endpoint_url` the local stack's URL): the function's JSON result with 200;
a handler's error as 200 with `X-Amz-Function-Error: Unhandled` and Lambda's error object; an unknown
function 404 `ResourceNotFoundException`; a throttle 429 `TooManyRequestsException`. Only the
`RequestResponse` invocation type: what an operator's tool (`make audit-redrive`) needs. The name may
be the function's name or its ARN; requests are not signed-checked, as the local stack has no IAM.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

from local.apigateway.http_messages import HttpRequest, HttpResponse, LocalRoute
from local.lambda_runtime.function_runtime import Throttled
from local.lambda_runtime.service import LambdaService

PATH = "/2015-03-31/functions/*"


def invoke_route(lambdas: LambdaService) -> LocalRoute:
    """The route that answers `Invoke` for `lambdas`' functions."""

    def invoke(request: HttpRequest) -> HttpResponse:
        parts = urlsplit(request.target).path.split("/")
        if len(parts) != 5 or parts[4] != "invocations":
            return _error(404, "ResourceNotFoundException", "Unknown operation")
        name = unquote(parts[3]).rsplit(":function:", 1)[-1].split(":", 1)[0]
        runtime = next((r for r in lambdas.functions.values() if r.spec.name == name), None)
        if runtime is None:
            return _error(404, "ResourceNotFoundException", f"Function not found: {name}")
        invocation_type = {k.lower(): v for k, v in request.headers}.get("x-amz-invocation-type")
        if invocation_type not in (None, "RequestResponse"):
            return _error(400, "InvalidParameterValueException", "Only RequestResponse is emulated")
        try:
            event: Any = json.loads(request.body or b"{}")
        except ValueError:
            return _error(400, "InvalidRequestContentException", "Could not parse request body into json")
        try:
            invocation = runtime.invoke(event)
        except Throttled:
            return _error(429, "TooManyRequestsException", "Rate Exceeded.")
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if invocation.failed:
            headers["X-Amz-Function-Error"] = "Unhandled"
            return HttpResponse(200, headers, json.dumps(invocation.error).encode())
        return HttpResponse(200, headers, json.dumps(invocation.payload).encode())

    return invoke


def _error(status: int, kind: str, message: str) -> HttpResponse:
    body = json.dumps({"Type": "User", "message": message}).encode()
    return HttpResponse(status, {"Content-Type": "application/json", "X-Amzn-ErrorType": kind}, body)
