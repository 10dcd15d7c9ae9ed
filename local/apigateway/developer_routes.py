"""Routes of the local gateway that the deployed API does not have: the token mint and Swagger UI.

`POST /_local/token` mints a token from the local user pool that holds the groups asked for
(`local/cognito/`: admins and ops from the staff pool, customers and providers from the customer
pool), the way a developer would sign in to Cognito; `/docs` is Swagger UI over the public API
document, served from the copy Powertools ships, so nothing is fetched from the internet. Like
every local route, they stay out of the access log and the API's metrics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

from local.apigateway.api import ApiDefinition
from local.apigateway.http_messages import HttpRequest, HttpResponse, LocalRoute, json_response, problem_response
from local.cognito.user_pool import DEFAULT_TTL_SECONDS, MixedPoolsError, UserPools

SWAGGER_UI = "aws_lambda_powertools.event_handler.openapi.swagger_ui"


def developer_routes(
    api: ApiDefinition, user_pools: UserPools, now: Callable[[], float] = time.time
) -> dict[tuple[str, str], LocalRoute]:
    """The routes by (method, path); tokens are minted at the stack's time (`now`)."""

    def token(request: HttpRequest) -> HttpResponse:
        return mint_token(user_pools, request, now())

    def docs(request: HttpRequest) -> HttpResponse:
        return swagger_page(api, request)

    return {
        ("POST", "/_local/token"): token,
        ("GET", "/docs"): docs,
        ("GET", "/docs/swagger-ui-bundle.min.js"): swagger_asset,
        ("GET", "/docs/swagger-ui.min.css"): swagger_asset,
    }


def mint_token(user_pools: UserPools, request: HttpRequest, now: float | None = None) -> HttpResponse:
    try:
        body = json.loads(request.body or b"{}")
        sub = body["sub"]
        groups = body.get("groups", [])
        ttl = int(body.get("ttlSeconds", DEFAULT_TTL_SECONDS))
        if not isinstance(sub, str) or not sub or not isinstance(groups, list) or ttl <= 0:
            raise ValueError("sub must be a non-empty string, groups a list, ttlSeconds positive")
        groups = [str(g) for g in groups]
        user_pools.for_groups(groups)
    except MixedPoolsError as error:
        return problem_response(
            400, "Bad Request", "VALIDATION_FAILED", str(error), [{"field": "body.groups", "message": str(error)}]
        )
    except (ValueError, KeyError, TypeError) as error:
        detail = f"Expected {{sub, groups}}: {error}"
        return problem_response(
            400, "Bad Request", "VALIDATION_FAILED", detail, [{"field": "body", "message": str(error)}]
        )
    token = user_pools.mint(sub, groups, ttl, now=now)
    return json_response(200, {"token": token, "expiresIn": ttl, "tokenType": "Bearer"})


def swagger_page(api: ApiDefinition, request: HttpRequest) -> HttpResponse:
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    if ("format", "json") in parse_qsl(urlsplit(request.target).query):
        return json_response(200, api.public_document())  # the page links its document here

    page = generate_swagger_html(
        json.dumps(api.public_document()),
        "/docs/swagger-ui-bundle.min.js",
        "/docs/swagger-ui.min.css",
        swagger_base_url="/docs",
        oauth2_config=None,
        persist_authorization=True,
    )
    return HttpResponse(200, {"Content-Type": "text/html; charset=utf-8"}, page.encode())


def swagger_asset(request: HttpRequest) -> HttpResponse:
    name = urlsplit(request.target).path.rsplit("/", 1)[-1]
    package = resources.files(SWAGGER_UI)
    content_type = "text/css" if name.endswith(".css") else "text/javascript"
    return HttpResponse(
        200, {"Content-Type": content_type, "Cache-Control": "max-age=3600"}, package.joinpath(name).read_bytes()
    )
