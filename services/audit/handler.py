"""Audit service: the Lambda entry point. Its routes arrive with the audit issue; until then every
request gets the same problem+json 404 as any unknown route."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from services.common.http import build_resolver, resolve
from services.common.observability import logger, metrics

app = build_resolver(logger)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
