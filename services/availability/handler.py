"""Availability service: the Lambda entry point. Routes are thin; the work is in domain/ and adapters/."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from services.availability.adapters.table_probe import DynamoDBTableProbe
from services.availability.domain.health import check_health
from services.common import __version__
from services.common.auth import Principal
from services.common.aws import dynamodb_client
from services.common.http import build_resolver
from services.common.observability import logger, metrics
from services.common.settings import ServiceSettings, load_settings
from services.common.timezones import TZDATA_VERSION

app = build_resolver(logger)


@app.get("/health")
def get_health() -> Response[dict[str, object]]:
    settings = load_settings(ServiceSettings)
    report = check_health(
        __version__, settings.stage, TZDATA_VERSION, DynamoDBTableProbe(dynamodb_client(), settings.table_name)
    )
    status = HTTPStatus.OK if report.healthy else HTTPStatus.SERVICE_UNAVAILABLE
    return Response(status_code=status, content_type="application/json", body=report.to_json())


@app.get("/me")
def get_me() -> dict[str, object]:
    principal = Principal.from_request_context(app.current_event.raw_event.get("requestContext"))
    return {"sub": principal.sub, "groups": sorted(group.value for group in principal.groups)}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
