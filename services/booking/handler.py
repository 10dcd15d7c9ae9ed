"""Booking service: the Lambda entry point. Routes are thin; the work is in domain/ and adapters/."""

from __future__ import annotations

# isort: off
from services.common import init_gc  # first: no garbage collection while the imports below load
from services.common import lazy_packages  # noqa: F401 - second: Powertools' packages load what is used
# isort: on

import hashlib
import json
import random
import re
import time
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BeforeValidator

from services.booking.adapters.dynamodb_store import DynamoDBBookingStore
from services.booking.domain.calendly import SIGNATURE_HEADER, InvalidSignatureError, change_of
from services.booking.domain.external import ACTOR, CalendlyConnections, ExternalCalendar, ExternalStatus
from services.booking.domain.models import Booking, BookingStatus
from services.booking.domain.use_cases import BookingRequest, BookingService, ContendedError
from services.booking.http_models import (
    BOOKING_ID,
    DELIVERY_ID,
    HOLD_ID,
    IDEMPOTENCY_KEY,
    PROVIDER_ID,
    SERIES_ID,
    WAITLIST_ID,
    WEBHOOK_ID,
    BookingIn,
    CalendlyIn,
    CancelIn,
    ContactIn,
    HoldIn,
    RescheduleIn,
    WaitlistIn,
    WebhookIn,
    booking_json,
    contact_json,
    delivery_json,
    external_json,
    hold_json,
    series_json,
    waitlist_json,
    webhook_json,
)
from services.booking.settings import BookingSettings
from services.common.auth import Principal
from services.common.aws import dynamodb_client, kms_client, scheduler_client
from services.common.clock import SupportedInstant, iso_utc, utc_now
from services.common.errors import FieldError, NotFoundError, ValidationFailedError
from services.common.http import (
    attribution_for,
    build_resolver,
    current_principal,
    etag,
    expected_version,
    percent_decoded,
    plus_restored,
    require_ordered,
    resolve,
)
from services.common.observability import Metric, count, identify, logger, observed
from services.common.settings import ServiceSettings, load_settings

# Each feature's own modules load with its first request, not at every cold start: a container of this
# function starts for its busiest route, POST /bookings, more often than for any other (decision 0021).
if TYPE_CHECKING:
    from services.booking.domain.deliveries import DeliveryLog
    from services.booking.domain.feeds import Feed, FeedService
    from services.booking.domain.holds import HoldService
    from services.booking.domain.notifications import ContactBook
    from services.booking.domain.personal_data import PersonalDataEraser
    from services.booking.domain.series import SeriesService
    from services.booking.domain.waitlist import WaitlistService
    from services.booking.domain.webhooks import WebhookService

app = build_resolver(logger)

BookingId = Annotated[str, Path(pattern=BOOKING_ID)]
Instant = Annotated[SupportedInstant, BeforeValidator(plus_restored)]
# A customer's id may be any text (a provider books for an e-mail address); its 128 characters are the
# id's, not its percent-encoding's.
CustomerId = Annotated[str, BeforeValidator(percent_decoded), Path(min_length=1, max_length=128, pattern=r"\S")]
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


# What one more read, transaction and answer need at worst. With less time left, a lost race is
# answered 503 CONTENDED (retry shortly) instead of being cut off by the timeout as a bare 502.
RETRY_RESERVE_MS = 2500


def jittered_pause(attempt: int) -> None:
    """Up to 20 ms, doubling per lost race to at most 200 ms, at random within it: racers spread out."""
    context: LambdaContext | None = getattr(app, "lambda_context", None)  # set while a request is resolved
    if context is not None and context.get_remaining_time_in_millis() < RETRY_RESERVE_MS:
        raise ContendedError()
    time.sleep(random.uniform(0, min(0.2, 0.02 * 2**attempt)))


@cache
def store() -> DynamoDBBookingStore:
    """The composition root: built once per container, on first use; one store (and one memory of
    calendars, remembered_calendars.py) for every use case."""
    return DynamoDBBookingStore(dynamodb_client(), load_settings(ServiceSettings).table_name)


@cache
def bookings() -> BookingService:
    return BookingService(store(), utc_now, jittered_pause)


@cache
def holds() -> HoldService:
    from services.booking.domain.holds import HoldService

    return HoldService(store(), utc_now, jittered_pause)


@cache
def series() -> SeriesService:
    from services.booking.domain.series import SeriesService

    return SeriesService(store(), utc_now, jittered_pause)


@cache
def waitlist() -> WaitlistService:
    from services.booking.domain.waitlist import WaitlistService

    return WaitlistService(store(), utc_now, jittered_pause)


@cache
def feeds() -> FeedService:
    from services.booking.domain.feeds import FeedService

    return FeedService(store(), utc_now)


@cache
def webhooks() -> WebhookService:
    from services.booking.adapters.kms_sealer import KmsSealer
    from services.booking.adapters.webhook_store import DynamoDBWebhookStore, ProviderOwners
    from services.booking.domain.webhooks import WebhookService
    from services.booking.domain_events import DETAIL_TYPES

    settings = load_settings(BookingSettings)
    return WebhookService(
        DynamoDBWebhookStore(dynamodb_client(), settings.table_name),
        ProviderOwners(store()),
        KmsSealer(kms_client(), settings.webhook_key_id),
        DETAIL_TYPES,
        utc_now,
        settings.allow_loopback,
    )


@cache
def delivery_log() -> DeliveryLog:
    from services.booking.adapters.retry_schedules import ScheduledRetries
    from services.booking.adapters.webhook_store import DynamoDBWebhookStore
    from services.booking.domain.deliveries import DeliveryLog

    settings = load_settings(BookingSettings)
    retries = ScheduledRetries(
        scheduler_client(), settings.retry_group, settings.retry_role_arn, settings.dispatcher_arn
    )
    return DeliveryLog(webhooks(), DynamoDBWebhookStore(dynamodb_client(), settings.table_name), retries, utc_now)


@cache
def eraser() -> PersonalDataEraser:
    from services.booking.adapters.notification_store import DynamoDBContacts
    from services.booking.domain.personal_data import PersonalDataEraser

    settings = load_settings(ServiceSettings)
    store = DynamoDBBookingStore(dynamodb_client(), settings.table_name)
    return PersonalDataEraser(store, utc_now, DynamoDBContacts(dynamodb_client(), settings.table_name))


@cache
def contacts() -> ContactBook:
    from services.booking.adapters.notification_store import DynamoDBContacts, ScheduledOptIns
    from services.booking.domain.notifications import ContactBook

    settings = load_settings(BookingSettings)
    opt_ins = ScheduledOptIns(
        scheduler_client(), settings.reminder_group, settings.reminder_role_arn, settings.notifications_arn, utc_now
    )
    return ContactBook(DynamoDBContacts(dynamodb_client(), settings.table_name), utc_now, opt_ins)


def _booking_response(booking: Booking) -> Response[Any]:
    return Response(
        status_code=HTTPStatus.OK,
        content_type="application/json",
        body=booking_json(booking),
        headers=etag(booking.version),
    )


def _idempotency_key() -> str | None:
    key = app.current_event.headers.get("Idempotency-Key") or app.current_event.headers.get("idempotency-key")
    if key is None:
        return None
    if not re.fullmatch(IDEMPOTENCY_KEY, key):
        raise ValidationFailedError(
            "The Idempotency-Key is invalid.",
            [FieldError("header.Idempotency-Key", "must be 1-128 letters, digits or . _ : -")],
        )
    return key


@app.post("/bookings")
def create_booking(body: Annotated[BookingIn, Body()]) -> Response[Any]:
    principal = current_principal(app)
    identify(providerId=body.providerId)
    request = BookingRequest(body.providerId, body.serviceId, body.start, body.customerId, body.notes, body.holdId)
    # The request's identity for idempotency: what was asked, not how it was spelt.
    request_hash = hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    if body.recurrence is not None:
        return _create_series(body, request, request_hash)
    answer = bookings().book(
        principal, request, _idempotency_key(), request_hash, booking_json, attribution_for(app, principal)
    )
    booking_id = str(answer.body["bookingId"])
    identify(bookingId=booking_id)
    count(Metric.IDEMPOTENT_REPLAY if answer.replayed else Metric.BOOKING_CREATED)
    if body.holdId is not None and not answer.replayed:
        count(Metric.HOLD_CONVERTED)
    logger.info(
        "booking created",
        replayed=answer.replayed,
        serviceId=body.serviceId,
        start=answer.body["start"],
        holdId=body.holdId,
    )
    headers = {"Location": f"/bookings/{booking_id}", **etag(int(str(answer.body["version"])))}
    return Response(status_code=answer.status, content_type="application/json", body=answer.body, headers=headers)


def _create_series(body: BookingIn, request: BookingRequest, request_hash: str) -> Response[Any]:
    assert body.recurrence is not None
    principal = current_principal(app)
    answer = series().book(
        principal,
        request,
        body.recurrence.recurrence(),
        _idempotency_key(),
        request_hash,
        series_json,
        attribution_for(app, principal),
    )
    series_id = str(answer.body["seriesId"])
    identify(seriesId=series_id)
    occurrences = len(answer.body["items"])  # type: ignore[arg-type]
    if answer.replayed:
        count(Metric.IDEMPOTENT_REPLAY)
    else:
        count(Metric.BOOKING_CREATED, occurrences)
    logger.info("series created", replayed=answer.replayed, serviceId=body.serviceId, occurrences=occurrences)
    return Response(
        status_code=answer.status,
        content_type="application/json",
        body=answer.body,
        headers={"Location": f"/series/{series_id}"},
    )


@app.get("/series/<seriesId>")
def get_series(seriesId: Annotated[str, Path(pattern=SERIES_ID)]) -> dict[str, Any]:
    identify(seriesId=seriesId)
    return series_json(series().get(current_principal(app), seriesId))


@app.post("/series/<seriesId>/cancel")
def cancel_series(
    seriesId: Annotated[str, Path(pattern=SERIES_ID)], body: Annotated[CancelIn, Body()]
) -> dict[str, Any]:
    principal = current_principal(app)
    identify(seriesId=seriesId)
    cancelled, now_cancelled = series().cancel(principal, seriesId, body.reason, attribution_for(app, principal))
    if now_cancelled:
        count(Metric.BOOKING_CANCELLED, now_cancelled)
    logger.info("series cancelled", occurrences=len(cancelled.bookings), cancelledNow=now_cancelled)
    return series_json(cancelled)


@app.get("/bookings/<bookingId>")
def get_booking(bookingId: Annotated[str, Path(pattern=BOOKING_ID)]) -> Response[Any]:
    identify(bookingId=bookingId)
    booking = bookings().get(current_principal(app), bookingId)
    return Response(
        status_code=HTTPStatus.OK,
        content_type="application/json",
        body=booking_json(booking),
        headers=etag(booking.version),
    )


@app.get("/bookings")
def list_bookings(
    providerId: Annotated[str | None, Query(pattern=PROVIDER_ID)] = None,
    customerId: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    window_start: Annotated[Instant | None, Query(alias="from")] = None,
    window_end: Annotated[Instant | None, Query(alias="to")] = None,
    status: Annotated[BookingStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> dict[str, Any]:
    window = (window_start or EARLIEST, window_end or LATEST)
    require_ordered(*window)
    page = bookings().list(current_principal(app), providerId, customerId, window, status, limit, cursor)
    return {"items": [booking_json(b) for b in page.items], "nextCursor": page.next_cursor}


@app.post("/bookings/<bookingId>/cancel")
def cancel_booking(bookingId: BookingId, body: Annotated[CancelIn, Body()]) -> Response[Any]:
    principal = current_principal(app)
    identify(bookingId=bookingId)
    booking = bookings().cancel(
        principal, bookingId, expected_version(app), body.reason, attribution_for(app, principal)
    )
    count(Metric.BOOKING_CANCELLED)
    logger.info("booking cancelled", version=booking.version)
    return _booking_response(booking)


@app.post("/bookings/<bookingId>/reschedule")
def reschedule_booking(bookingId: BookingId, body: Annotated[RescheduleIn, Body()]) -> Response[Any]:
    principal = current_principal(app)
    identify(bookingId=bookingId)
    booking = bookings().reschedule(
        principal, bookingId, body.start, expected_version(app), attribution_for(app, principal)
    )
    count(Metric.BOOKING_RESCHEDULED)
    logger.info("booking rescheduled", start=booking.start.isoformat(), version=booking.version)
    return _booking_response(booking)


@app.post("/bookings/<bookingId>/approve")
def approve_booking(bookingId: BookingId) -> Response[Any]:
    principal = current_principal(app)
    identify(bookingId=bookingId)
    booking = bookings().approve(principal, bookingId, expected_version(app), attribution_for(app, principal))
    logger.info("booking approved", version=booking.version)
    return _booking_response(booking)


@app.post("/bookings/<bookingId>/decline")
def decline_booking(bookingId: BookingId, body: Annotated[CancelIn, Body()]) -> Response[Any]:
    principal = current_principal(app)
    identify(bookingId=bookingId)
    booking = bookings().decline(
        principal, bookingId, expected_version(app), body.reason, attribution_for(app, principal)
    )
    logger.info("booking declined", version=booking.version)
    return _booking_response(booking)


@app.post("/bookings/<bookingId>/no-show")
def mark_no_show(bookingId: BookingId) -> Response[Any]:
    principal = current_principal(app)
    identify(bookingId=bookingId)
    booking = bookings().mark_no_show(principal, bookingId, expected_version(app), attribution_for(app, principal))
    count(Metric.BOOKING_NO_SHOW)
    logger.info("booking marked no-show", version=booking.version)
    return _booking_response(booking)


@app.post("/holds")
def create_hold(body: Annotated[HoldIn, Body()]) -> Response[Any]:
    principal = current_principal(app)
    identify(providerId=body.providerId)
    request = BookingRequest(body.providerId, body.serviceId, body.start, body.customerId, None)
    hold = holds().hold(principal, request, attribution_for(app, principal))
    identify(holdId=hold.hold_id)
    count(Metric.HOLD_CREATED)
    logger.info(
        "hold created", serviceId=body.serviceId, start=hold.start.isoformat(), expiresAt=iso_utc(hold.expires_at)
    )
    return Response(
        status_code=HTTPStatus.CREATED,
        content_type="application/json",
        body=hold_json(hold),
        headers={"Location": f"/holds/{hold.hold_id}"},
    )


@app.get("/holds/<holdId>")
def get_hold(holdId: Annotated[str, Path(pattern=HOLD_ID)]) -> dict[str, Any]:
    identify(holdId=holdId)
    return hold_json(holds().get(current_principal(app), holdId))


@app.delete("/holds/<holdId>")
def release_hold(holdId: Annotated[str, Path(pattern=HOLD_ID)]) -> Response[Any]:
    principal = current_principal(app)
    identify(holdId=holdId)
    holds().release(principal, holdId, attribution_for(app, principal))
    count(Metric.HOLD_RELEASED)
    logger.info("hold released")
    return Response(status_code=HTTPStatus.NO_CONTENT)


@app.post("/waitlist")
def join_waitlist(body: Annotated[WaitlistIn, Body()]) -> Response[Any]:
    from services.booking.domain.waitlist import WaitlistRequest

    principal = current_principal(app)
    identify(providerId=body.providerId)
    request = WaitlistRequest(body.providerId, body.serviceId, body.window_start, body.window_end, body.customerId)
    entry = waitlist().join(principal, request, attribution_for(app, principal))
    identify(waitlistId=entry.waitlist_id)
    count(Metric.WAITLIST_JOINED)
    logger.info("waitlist joined", serviceId=body.serviceId, windowStart=iso_utc(entry.window_start))
    return Response(
        status_code=HTTPStatus.CREATED,
        content_type="application/json",
        body=waitlist_json(entry),
        headers={"Location": f"/waitlist/{entry.waitlist_id}"},
    )


@app.get("/waitlist/<waitlistId>")
def get_waitlist_entry(waitlistId: Annotated[str, Path(pattern=WAITLIST_ID)]) -> dict[str, Any]:
    identify(waitlistId=waitlistId)
    return waitlist_json(waitlist().get(current_principal(app), waitlistId))


@app.delete("/waitlist/<waitlistId>")
def leave_waitlist(waitlistId: Annotated[str, Path(pattern=WAITLIST_ID)]) -> Response[Any]:
    principal = current_principal(app)
    identify(waitlistId=waitlistId)
    waitlist().leave(principal, waitlistId, attribution_for(app, principal))
    logger.info("waitlist left")
    return Response(status_code=HTTPStatus.NO_CONTENT)


@app.delete("/customers/<customerId>/personal-data")
def erase_personal_data(customerId: CustomerId) -> Response[Any]:
    principal = current_principal(app)
    erasure = eraser().erase(principal, customerId, attribution_for(app, principal))
    logger.info("personal data erased", bookings=erasure.bookings)  # the customer's id is in the trail, not the log
    # 202: the bookings are clean now; the audit service deletes the customer's sealing key moments later.
    return Response(
        status_code=HTTPStatus.ACCEPTED,
        content_type="application/json",
        body={"customerId": erasure.customer_id, "bookings": erasure.bookings, "erasedAt": iso_utc(erasure.erased_at)},
    )


# Calendar feeds (decision 0028)

FEED_ID = r"^fd_[0-9a-f]{32}$"


def _calendar_response(feed: Feed) -> Response[Any]:
    """The feed as text/calendar, with a strong ETag of its bytes; `If-None-Match` naming it is a 304,
    so a calendar app that polls an unchanged feed downloads nothing."""
    from services.booking.ical import calendar_ics  # icalendar is loaded by the feeds alone

    body = calendar_ics(feed, utc_now())
    tag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": tag, "Cache-Control": "private, max-age=300"}
    header = app.current_event.headers.get("If-None-Match") or app.current_event.headers.get("if-none-match") or ""
    asked = {value.strip().removeprefix("W/") for value in header.split(",")}  # weak comparison (RFC 9110)
    if tag in asked or "*" in asked:
        return Response(status_code=HTTPStatus.NOT_MODIFIED, headers=headers)
    logger.info("calendar feed", bookings=len(feed.bookings), bytes=len(body))
    return Response(
        status_code=HTTPStatus.OK, content_type="text/calendar; charset=utf-8", body=body.decode(), headers=headers
    )


@app.get("/providers/<providerId>/calendar.ics")
def provider_calendar(providerId: Annotated[str, Path(pattern=PROVIDER_ID)]) -> Response[Any]:
    identify(providerId=providerId)
    return _calendar_response(feeds().provider_feed(current_principal(app), providerId))


@app.put("/me/contact")
def set_contact(body: Annotated[ContactIn, Body()]) -> dict[str, Any]:
    """A customer's WhatsApp number and consent (decision 0031); each change is in the trail."""
    principal = current_principal(app)
    contact = contacts().set(principal, body.whatsapp, body.optIn, attribution_for(app, principal))
    logger.info("contact set", optIn=contact.opted_in)  # never the number
    return contact_json(contact)


@app.get("/me/contact")
def get_contact() -> dict[str, Any]:
    contact = contacts().get(current_principal(app))
    if contact is None:
        raise NotFoundError("No contact yet: PUT /me/contact.")
    return contact_json(contact)


@app.get("/me/calendar.ics")
def my_calendar() -> Response[Any]:
    return _calendar_response(feeds().customer_feed(current_principal(app)))


@app.get("/feeds/<feedId>/calendar.ics")
def shared_calendar(
    feedId: Annotated[str, Path(pattern=FEED_ID)],
    key: Annotated[str, Query(min_length=1, max_length=128, pattern=r"\S")],
) -> Response[Any]:
    """Public: the feed's key is its authorization (calendar apps cannot sign in)."""
    return _calendar_response(feeds().shared_feed(feedId, key))


def _feed_url(feed_id: str, key: str) -> str:
    """Where the feed is, as this request reached the API: its host, and the path's prefix before the
    route (an execute-api URL's stage, a custom domain's base path; none on the local stack)."""
    event = app.current_event
    host = event.headers.get("Host") or event.headers.get("host") or event.request_context.domain_name
    scheme = event.headers.get("X-Forwarded-Proto") or event.headers.get("x-forwarded-proto") or "https"
    path = str((event.get("requestContext") or {}).get("path") or event.path)
    prefix = path[: len(path) - len(event.path)] if path.endswith(event.path) else ""
    return f"{scheme}://{host}{prefix}/feeds/{feed_id}/calendar.ics?key={key}"


@app.post("/providers/<providerId>/feed")
def share_calendar(providerId: Annotated[str, Path(pattern=PROVIDER_ID)]) -> Response[Any]:
    principal = current_principal(app)
    identify(providerId=providerId)
    issued = feeds().issue(principal, providerId, attribution_for(app, principal))
    logger.info("calendar feed shared", feedId=issued.feed_id)  # never its key
    return Response(
        status_code=HTTPStatus.CREATED,
        content_type="application/json",
        body={"url": _feed_url(issued.feed_id, issued.key), "feedId": issued.feed_id, "createdAt": issued.created_at},
        headers={"Cache-Control": "no-store"},  # the only time its key is shown: kept by no cache
    )


@app.delete("/providers/<providerId>/feed")
def revoke_calendar_feed(providerId: Annotated[str, Path(pattern=PROVIDER_ID)]) -> Response[Any]:
    principal = current_principal(app)
    identify(providerId=providerId)
    feeds().revoke(principal, providerId, attribution_for(app, principal))
    logger.info("calendar feed revoked")
    return Response(status_code=HTTPStatus.NO_CONTENT)


# Calendly, inbound (decision 0030)


NO_STORE = {"Cache-Control": "no-store"}  # an answer with a secret: kept by no cache


@cache
def external_calendar() -> ExternalCalendar:
    return ExternalCalendar(store(), utc_now, jittered_pause)


@cache
def calendly() -> CalendlyConnections:
    from services.booking.adapters.kms_sealer import KmsSealer

    settings = load_settings(BookingSettings)
    # The webhooks' key, bound to the provider by another context key: IAM lets this role open only these.
    sealer = KmsSealer(kms_client(), settings.webhook_key_id, context="calendlyProviderId")
    return CalendlyConnections(store(), sealer, utc_now)


def _calendly_url(provider_id: str) -> str:
    """Where the provider's Calendly subscription delivers, as this request reached the API."""
    event = app.current_event
    host = event.headers.get("Host") or event.headers.get("host") or event.request_context.domain_name
    scheme = event.headers.get("X-Forwarded-Proto") or event.headers.get("x-forwarded-proto") or "https"
    path = str((event.get("requestContext") or {}).get("path") or event.path)
    prefix = path[: len(path) - len(event.path)] if path.endswith(event.path) else ""
    return f"{scheme}://{host}{prefix}/integrations/calendly/{provider_id}"


@app.put("/providers/<providerId>/integrations/calendly")
def connect_calendly(
    providerId: Annotated[str, Path(pattern=PROVIDER_ID)], body: Annotated[CalendlyIn, Body()]
) -> Response[Any]:
    principal = current_principal(app)
    identify(providerId=providerId)
    by = attribution_for(app, principal)
    connection = calendly().connect(principal, providerId, body.signingKey, body.calendlyUser, by)
    logger.info("calendly connected")  # never the key
    return Response(
        status_code=HTTPStatus.OK,
        content_type="application/json",
        body={
            "providerId": providerId,
            "connectedAt": connection.connected_at,
            "webhookUrl": _calendly_url(providerId),
            "events": ["invitee.created", "invitee.canceled"],
            "calendlyUser": connection.user_uri,
        },
        headers=NO_STORE,
    )


@app.delete("/providers/<providerId>/integrations/calendly")
def disconnect_calendly(providerId: Annotated[str, Path(pattern=PROVIDER_ID)]) -> Response[Any]:
    principal = current_principal(app)
    identify(providerId=providerId)
    calendly().disconnect(principal, providerId, attribution_for(app, principal))
    logger.info("calendly disconnected")
    return Response(status_code=HTTPStatus.NO_CONTENT)


@app.post("/integrations/calendly/<providerId>")
def calendly_delivery(providerId: Annotated[str, Path(pattern=PROVIDER_ID)]) -> dict[str, Any]:
    """Public, like Calendly's deliveries: the signature is its authorization (decision 0030)."""
    identify(providerId=providerId)
    event = app.current_event
    body = (event.decoded_body or "").encode()
    header = next((v for k, v in event.headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
    try:
        connection = calendly().verified(providerId, header, body)
    except InvalidSignatureError as refused:
        count(Metric.CALENDLY_REJECTED)
        logger.warning("calendly delivery refused", why=refused.detail)
        raise
    change = change_of(body)
    if change is None:
        logger.info("calendly event ignored")
        return {"status": "IGNORED"}
    if not connection.hosts(change):  # signed with a key shared by many users, for another's event
        logger.warning("calendly event of another user ignored", hosts=sorted(change.hosts))
        return {"status": "IGNORED"}
    by = attribution_for(app, Principal(ACTOR, frozenset()))  # the trail's actor: `calendly`
    applied = external_calendar().apply(providerId, change, by)
    block = applied.block
    identify(externalId=block.external_id)
    if applied.changed and block.status is ExternalStatus.CONFLICT:
        count(Metric.EXTERNAL_CONFLICT)
        logger.error("calendly time already taken here", conflictsWith=list(block.conflicts_with))
    else:
        logger.info("calendly change", status=block.status.value, changed=applied.changed)
    return external_json(block, applied.changed)


# Webhooks (decision 0029)

WebhookId = Annotated[str, Path(pattern=WEBHOOK_ID)]


@app.post("/webhooks")
def subscribe_webhook(body: Annotated[WebhookIn, Body()]) -> Response[Any]:
    principal = current_principal(app)
    made, secret = webhooks().subscribe(principal, body.url, body.events, body.providerId)
    identify(webhookId=made.webhook_id)
    logger.info("webhook subscribed", events=list(made.events), providerId=made.provider_id)  # never the secret
    return Response(
        status_code=HTTPStatus.CREATED,
        content_type="application/json",
        body={**webhook_json(made), "secret": secret},
        headers={"Location": f"/webhooks/{made.webhook_id}", **NO_STORE},
    )


@app.get("/webhooks")
def list_webhooks() -> dict[str, Any]:
    return {"items": [webhook_json(s) for s in webhooks().visible(current_principal(app))]}


@app.delete("/webhooks/<webhookId>")
def delete_webhook(webhookId: WebhookId) -> Response[Any]:
    identify(webhookId=webhookId)
    webhooks().delete(current_principal(app), webhookId)
    logger.info("webhook deleted")
    return Response(status_code=HTTPStatus.NO_CONTENT)


@app.post("/webhooks/<webhookId>/secret")
def rotate_webhook_secret(webhookId: WebhookId) -> Response[Any]:
    """A new secret, shown once; the previous one signs too for 24 hours, so receivers can move."""
    identify(webhookId=webhookId)
    rotated, secret = webhooks().rotate(current_principal(app), webhookId)
    logger.info("webhook secret rotated")
    return Response(
        status_code=HTTPStatus.OK,
        content_type="application/json",
        body={**webhook_json(rotated), "secret": secret},
        headers=NO_STORE,
    )


@app.get("/webhooks/<webhookId>/deliveries")
def list_webhook_deliveries(
    webhookId: WebhookId,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> dict[str, Any]:
    identify(webhookId=webhookId)
    found, next_cursor = delivery_log().listed(current_principal(app), webhookId, limit, cursor)
    return {"items": [delivery_json(d) for d in found], "nextCursor": next_cursor}


@app.post("/webhooks/<webhookId>/deliveries/<deliveryId>/redeliver")
def redeliver_webhook(webhookId: WebhookId, deliveryId: Annotated[str, Path(pattern=DELIVERY_ID)]) -> Response[Any]:
    """One more attempt of a delivered or failed delivery, within the minute, with the same id."""
    identify(webhookId=webhookId, deliveryId=deliveryId)
    reopened = delivery_log().redeliver(current_principal(app), webhookId, deliveryId)
    logger.info("webhook redelivery scheduled")
    return Response(status_code=HTTPStatus.ACCEPTED, content_type="application/json", body=delivery_json(reopened))


@observed(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)


init_gc.done()
