"""Who may read which part of the audit trail."""

from __future__ import annotations

from typing import Protocol

from msgspec import Struct

from services.common.audit import AuditEvent
from services.common.auth import Group, Principal
from services.common.errors import NotFoundError

Page = tuple[list[AuditEvent], str | None]
# The actor shown in place of the subject of an admin (or anyone else neither party knows) to the
# booking's customer and provider: staff ids are for admins and ops only.
STAFF = "staff"


class BookingPeople(Protocol):
    def booking_people(self, booking_id: str) -> tuple[str, str | None] | None: ...


class AuditReader(Protocol):
    def history(self, partition: str, limit: int, cursor: str | None) -> Page: ...

    def events(
        self, entity_type: str, entity_id: str | None, start: str, end: str, limit: int, cursor: str | None
    ) -> Page: ...


def _as_seen_by_a_party(event: AuditEvent, known: set[str | None]) -> AuditEvent:
    """An event as the booking's customer or provider reads it: staff by role, not by subject, and
    without the provider owner's subject, which only admins and ops see (as on `GET /providers`)."""
    changes = {name: change for name, change in (event.changes or {}).items() if name != "providerOwner"}
    actor = event.actor if event.actor in known else STAFF
    return event.model_copy(update={"actor": actor, "changes": changes})


class AuditQueries(Struct):
    people: BookingPeople
    reader: AuditReader

    def booking_history(self, principal: Principal, booking_id: str, limit: int, cursor: str | None) -> Page:
        """A booking's changes for its customer, its provider, admins and ops; for anyone else it does not exist."""
        people = self.people.booking_people(booking_id)
        if people is None:
            raise NotFoundError(f"Booking {booking_id} does not exist.")
        customer, provider_owner = people
        allowed = (
            principal.is_in(Group.ADMINS, Group.OPS)
            or (principal.is_in(Group.CUSTOMERS) and customer == principal.sub)
            or (principal.is_in(Group.PROVIDERS) and provider_owner == principal.sub)
        )
        if not allowed:
            raise NotFoundError(f"Booking {booking_id} does not exist.")
        events, next_cursor = self.reader.history(f"BOOKING#{booking_id}", limit, cursor)
        if principal.is_in(Group.ADMINS, Group.OPS):
            return events, next_cursor
        # Customers and providers see who they are, and each other; staff they do not know by id.
        known = {principal.sub, customer, provider_owner}
        return [_as_seen_by_a_party(e, known) for e in events], next_cursor

    def events(
        self,
        principal: Principal,
        entity_type: str,
        entity_id: str | None,
        start: str,
        end: str,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """The trail across entities: ops and admins only."""
        principal.require(Group.OPS, Group.ADMINS)
        return self.reader.events(entity_type, entity_id, start, end, limit, cursor)
