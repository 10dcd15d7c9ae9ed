"""External busy time: what a provider's other calendar (Calendly) booked (decision 0030).

An external block is not a booking: nobody books it here, nobody moves it. Its span sits in the busy
blocks as a booking's does, under its own id (`ext_…`), so the one engine that searches and books
treats it as taken (explain: `EXTERNAL`). It is written with the same guarded transaction as a
booking's claim, so a booking of ours racing it either commits first or is refused: we never accept
a booking into a time we know the provider has given away.

The time is always taken: Calendly has already told its invitee yes, and a time left open here would
only be booked again. What it overlaps decides the rest, in the same transaction:
- a live hold is ended (`RELEASED`, by `calendly`): the time is no longer the provider's to give;
- a booking awaiting approval is declined, for the same reason (its customer hears of it);
- a confirmed booking stays, and the block is kept as `CONFLICT`, naming it: the provider has two
  appointments at once, which only a person can settle. The trail records it, a metric counts it
  and an alarm wakes someone (docs/runbooks/calendly.md);
- a series being claimed: decided again once it has committed or given back (seconds).

Every change is idempotent on the block's id, derived from the provider and the invitee: a
redelivery finds the item it made; a cancel that arrives before its create leaves a `FREED` item, so
the late create changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from msgspec import Struct
from msgspec.structs import replace

from services.booking.domain.calendly import (
    MAX_SIGNING_KEY,
    MIN_SIGNING_KEY,
    Change,
    InviteeCanceled,
    InviteeCreated,
    verify,
)
from services.booking.domain.models import Booking, BookingStatus, Hold
from services.booking.domain.ports import ClaimOutcome, Committed, Refused
from services.booking.domain.use_cases import MAX_ATTEMPTS, ContendedError
from services.common import keys
from services.common.auth import Attribution, Group, Principal
from services.common.calendar import BookedSpan, ProviderCalendar
from services.common.clock import iso_utc
from services.common.errors import FieldError, ForbiddenError, NotFoundError, ValidationFailedError

SOURCE = "calendly"
# Printable ASCII without spaces (Calendly's own keys are base64url): the API document's pattern too.
SIGNING_KEY = re.compile(f"[!-~]{{{MIN_SIGNING_KEY},{MAX_SIGNING_KEY}}}")
ACTOR = "calendly"  # who the trail says changed an external block: the provider's other calendar


class ExternalStatus(StrEnum):
    BUSY = "BUSY"  # its span is in the busy blocks
    FREED = "FREED"  # cancelled there (or cancelled before we heard of it): the time is ours again
    CONFLICT = "CONFLICT"  # in the busy blocks too, over a confirmed booking of ours: someone must move one


class ExternalBlock(Struct, frozen=True):
    external_id: str
    provider_id: str
    source: str
    reference: str  # the source's own id for it: Calendly's invitee URI (no name, no e-mail: not ours to keep)
    event_uri: str
    start: datetime
    end: datetime
    status: ExternalStatus
    created_at: str
    conflicts_with: tuple[str, ...] = ()  # the confirmed bookings of ours it overlaps: two appointments at once
    released: tuple[str, ...] = ()  # the holds it ended (the time was no longer the provider's to give)
    declined: tuple[str, ...] = ()  # the bookings awaiting approval it declined, for the same reason
    rescheduled: bool = False  # freed because it moved there (its new time comes as another invitee)
    replaces: str | None = None  # the invitee it replaces, when a reschedule

    @property
    def span(self) -> BookedSpan:
        """Its time as the busy blocks hold it: no service, no buffers, no customer."""
        return BookedSpan(self.external_id, self.source, "", self.start, self.start, self.end, 0, self.created_at)


class ExternalStore(Protocol):
    def calendar(self, provider_id: str, until: datetime) -> ProviderCalendar | None: ...

    def external_block(self, external_id: str) -> ExternalBlock | None: ...

    def block_external(
        self,
        block: ExternalBlock,
        calendar: ProviderCalendar,
        by: Attribution,
        holds: list[Hold],
        pending: list[Booking],
    ) -> ClaimOutcome:
        """Put the block and its span in (guarded as a booking's claim), ending `holds` and declining
        `pending` in the same transaction; Refused when the block exists."""
        ...

    def get_hold(self, hold_id: str) -> Hold | None: ...

    def get_booking(self, booking_id: str) -> Booking | None: ...

    def record_external(self, block: ExternalBlock, by: Attribution) -> bool:
        """Put a block that holds no time (FREED before its create came); False if it exists."""
        ...

    def free_external(self, block: ExternalBlock, freed: ExternalBlock, by: Attribution) -> ClaimOutcome:
        """`block` becomes `freed`, its span out of the blocks; Refused when it is no longer as read."""
        ...


class Applied(Struct, frozen=True):
    """What a delivery did: the block as it now stands, and whether this delivery changed it."""

    block: ExternalBlock
    changed: bool


class ExternalCalendar(Struct):
    store: ExternalStore
    clock: Callable[[], datetime]
    pause: Callable[[int], None]

    def apply(self, provider_id: str, change: Change, by: Attribution) -> Applied:
        external_id = keys.external_id(SOURCE, f"{provider_id} {change.invitee_uri}")
        block = ExternalBlock(
            external_id,
            provider_id,
            SOURCE,
            change.invitee_uri,
            change.event_uri,
            change.start,
            change.end,
            ExternalStatus.BUSY,
            iso_utc(self.clock()),
            rescheduled=isinstance(change, InviteeCanceled) and change.rescheduled,
            replaces=change.rescheduled_from if isinstance(change, InviteeCreated) else None,
        )
        if isinstance(change, InviteeCreated):
            return self._busy(block, by)
        return self._free(block, by)

    def _busy(self, block: ExternalBlock, by: Attribution) -> Applied:
        for attempt in range(MAX_ATTEMPTS):
            known = self.store.external_block(block.external_id)
            if known is not None:
                return Applied(known, False)  # a redelivery, or its cancel came first
            now = self.clock()
            # A fresh read, never a remembered calendar: what overlaps is decided on it.
            calendar = self.store.calendar(block.provider_id, block.end)
            if calendar is None:
                raise NotFoundError(f"Provider {block.provider_id} does not exist.")
            # Other external blocks are no conflict: a Calendly group event has an invitee for each seat.
            overlapping = [
                calendar.booked[busy.booking_id]
                for busy in calendar.busy_at(now)
                if busy.booking_id and busy.start < block.end and block.start < busy.end and not busy.external
            ]
            claimed = {s.series_id for s in calendar.pending_series.values() if s.live(now)}
            if any(
                span.booking_id in s.booking_ids
                for s in calendar.pending_series.values()
                if s.series_id in claimed
                for span in overlapping
            ):
                self.pause(attempt)  # a series commits or gives back within seconds: decide then
                continue
            evicted = self._evicted(overlapping, now)
            if evicted is None:
                self.pause(attempt)  # one of them changed since the calendar was read
                continue
            holds, pending = evicted
            confirmed = tuple(sorted(s.booking_id for s in overlapping if s.expires_at is None))
            status = ExternalStatus.CONFLICT if confirmed else ExternalStatus.BUSY
            taken = replace(
                block,
                status=status,
                conflicts_with=confirmed,
                released=tuple(sorted(h.hold_id for h in holds)),
                declined=tuple(sorted(b.booking_id for b in pending)),
            )
            outcome = self.store.block_external(taken, calendar, by, holds, pending)
            if isinstance(outcome, Committed):
                return Applied(taken, True)
            if not isinstance(outcome, Refused):
                self.pause(attempt)  # a booking or another block changed the calendar: decide again
        raise ContendedError()

    def _evicted(self, overlapping: list[BookedSpan], now: datetime) -> tuple[list[Hold], list[Booking]] | None:
        """The holds and the bookings awaiting approval the time is taken from, as they are now; None
        when one is no longer what the calendar said (converted, approved): read again."""
        holds, pending = [], []
        for span in overlapping:
            if span.expires_at is None:
                continue  # a confirmed booking: the conflict stays, for a person to settle
            if span.booking_id.startswith(keys.HOLD_ID_PREFIX):
                hold = self.store.get_hold(span.booking_id)
                if hold is None or not hold.live(now):
                    return None
                holds.append(hold)
            else:
                booking = self.store.get_booking(span.booking_id)
                if booking is None or booking.as_of(now).status is not BookingStatus.PENDING:
                    return None
                pending.append(booking)
        return holds, pending

    def _free(self, block: ExternalBlock, by: Attribution) -> Applied:
        freed = replace(block, status=ExternalStatus.FREED)
        for attempt in range(MAX_ATTEMPTS):
            known = self.store.external_block(block.external_id)
            if known is None:
                # Cancelled before its create reached us: kept FREED, so the late create changes nothing.
                if self.store.record_external(freed, by):
                    return Applied(freed, True)
                continue
            if known.status is ExternalStatus.FREED:
                return Applied(known, False)
            now_freed = replace(known, status=ExternalStatus.FREED, rescheduled=block.rescheduled)
            outcome = self.store.free_external(known, now_freed, by)
            if isinstance(outcome, Committed):
                return Applied(now_freed, True)
            self.pause(attempt)
        raise ContendedError()


# The provider's connection: its signing key, sealed.


class Sealer(Protocol):
    def seal(self, secret: bytes, bound_to: str) -> bytes: ...

    def open(self, sealed: bytes, bound_to: str) -> bytes: ...


class CalendlyConnection(Struct, frozen=True):
    provider_id: str
    sealed_key: bytes
    connected_at: str
    # The provider's Calendly user: when set, only that user's events count. Needed where one signing
    # key signs for many users (an OAuth app's key is the app's, shared by every provider).
    user_uri: str | None = None

    def hosts(self, change: Change) -> bool:
        """Whether the event is this provider's: always when no user is set, or the payload names none."""
        return self.user_uri is None or not change.hosts or self.user_uri in change.hosts


class ConnectionStore(Protocol):
    def owner_of(self, provider_id: str) -> str | None:
        """The provider's owner's sub; None when there is no such provider."""
        ...

    def calendly_connection(self, provider_id: str) -> CalendlyConnection | None: ...

    def connect_calendly(self, connection: CalendlyConnection, by: Attribution) -> None: ...

    def disconnect_calendly(self, provider_id: str, by: Attribution) -> bool:
        """False when there was no connection."""
        ...


class NotConnectedError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("This provider has no Calendly connection: PUT its signing key first.")


class CalendlyConnections(Struct):
    store: ConnectionStore
    sealer: Sealer
    clock: Callable[[], datetime]

    def connect(
        self, principal: Principal, provider_id: str, signing_key: str, user_uri: str | None, by: Attribution
    ) -> CalendlyConnection:
        self._authorize(principal, provider_id)
        if not SIGNING_KEY.fullmatch(signing_key):
            raise ValidationFailedError(
                "The signing key is not one Calendly would use.",
                [
                    FieldError(
                        "body.signingKey",
                        f"{MIN_SIGNING_KEY} to {MAX_SIGNING_KEY} printable ASCII characters, no spaces",
                    )
                ],
            )
        sealed = self.sealer.seal(signing_key.encode(), provider_id)
        connection = CalendlyConnection(provider_id, sealed, iso_utc(self.clock()), user_uri)
        self.store.connect_calendly(connection, by)
        return connection

    def disconnect(self, principal: Principal, provider_id: str, by: Attribution) -> None:
        self._authorize(principal, provider_id)
        if not self.store.disconnect_calendly(provider_id, by):
            raise NotConnectedError()

    def verified(self, provider_id: str, header: str | None, body: bytes) -> CalendlyConnection:
        """The provider's connection; raise unless the delivery is signed with its key, within 3
        minutes of our clock."""
        connection = self.store.calendly_connection(provider_id)
        if connection is None:
            raise NotConnectedError()
        key = self.sealer.open(connection.sealed_key, provider_id).decode()
        verify(header, body, key, self.clock())
        return connection

    def _authorize(self, principal: Principal, provider_id: str) -> None:
        if not principal.is_in(Group.ADMINS) and not principal.is_in(Group.PROVIDERS):
            raise ForbiddenError("Only admins and the provider's owner connect its Calendly.")
        owner = self.store.owner_of(provider_id)
        if owner is None:
            raise NotFoundError(f"Provider {provider_id} does not exist.")
        if not principal.is_in(Group.ADMINS) and owner != principal.sub:
            raise ForbiddenError("Providers connect only the providers they own.")
