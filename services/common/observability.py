"""The one Logger and Metrics per function container, configured from the environment
(`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_LOG_LEVEL`, `POWERTOOLS_METRICS_NAMESPACE`), and the one
way to name what a request is about in both logs and traces."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

from services.common import tracing

logger = Logger()
metrics = Metrics()

_SPAN_NAMES = {"bookingId": "booking_id", "providerId": "provider_id", "entityId": "entity_id"}


def identify(**ids: str) -> None:
    """Domain ids (`bookingId=…`, `providerId=…`) as keys on every later log line and on the current span."""
    logger.append_keys(**ids)
    tracing.set_attributes(**{_SPAN_NAMES.get(name, name): value for name, value in ids.items()})
