"""Who is calling: the principal behind the Cognito claims API Gateway put on the event.

Two user pools sign the tokens the API takes (decision 0018): the customer pool (customers and
providers) and the staff pool (admins and ops), which requires MFA at sign-in. A group counts only
from the pool that holds it, told by the token's issuer: `admins` or `ops` in a customer-pool token
(a group of that name made there, by mistake or by whoever can edit that pool) grants nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from msgspec import Struct

from services.common.errors import ForbiddenError, UnauthorizedError


class Group(StrEnum):
    CUSTOMERS = "customers"
    PROVIDERS = "providers"
    ADMINS = "admins"
    OPS = "ops"


STAFF_GROUPS = frozenset({Group.ADMINS, Group.OPS})  # held by the staff pool, and honoured from it only


def parse_groups(raw: Any) -> frozenset[Group]:
    """`cognito:groups` as REST (comma-joined), HTTP APIs (`[a b]`) or a list carry it; unknown names ignored."""
    if raw is None:
        return frozenset()
    names: list[str]
    if isinstance(raw, list | tuple):
        names = [str(item) for item in raw]
    else:
        names = str(raw).strip("[]").replace(",", " ").split()
    known = {group.value for group in Group}
    return frozenset(Group(name) for name in names if name in known)


class Attribution(Struct, frozen=True):
    """Who made a change, stored on every item written so the audit trail can tell from the stream alone."""

    actor: str
    request_id: str
    trace_id: str  # the X-Ray trace of the request
    span_id: str = ""  # the span that wrote: what the audit consumer's work links to
    # The trace began before API Gateway got the request, so the client named it (API Gateway
    # continues a caller's X-Amzn-Trace-Id). False does not prove the opposite: a trace id is a
    # lead, never proof. `request_id` is the key.
    trace_from_client: bool = False


class Principal(Struct, frozen=True):
    """An authenticated caller: subject and groups."""

    sub: str
    groups: frozenset[Group]

    @classmethod
    def from_request_context(cls, request_context: Mapping[str, Any] | None, staff_issuer: str) -> Principal:
        """The caller of an authorized route, with the groups its token's pool may grant; a token with
        no such group may do nothing (403). `staff_issuer` is the staff pool's `iss`."""
        claims = ((request_context or {}).get("authorizer") or {}).get("claims") or {}
        sub = claims.get("sub")
        if not sub:
            raise UnauthorizedError("The request carries no authenticated identity.")
        named = parse_groups(claims.get("cognito:groups"))
        # The authorizer has checked the signature against the pool `iss` names, so `iss` is proven.
        staff = claims.get("iss") == staff_issuer
        groups = named & STAFF_GROUPS if staff else named - STAFF_GROUPS
        if not groups:
            if staff and named:
                raise ForbiddenError("customers and providers are granted only by the customer user pool.")
            if named:
                raise ForbiddenError("admins and ops are granted only by the staff user pool, which requires MFA.")
            raise ForbiddenError("The caller belongs to no group (customers, providers, admins or ops).")
        return cls(sub=str(sub), groups=groups)

    def is_in(self, *groups: Group) -> bool:
        return bool(self.groups.intersection(groups))

    def require(self, *groups: Group) -> None:
        """Refuse (403) unless the caller is in one of `groups`."""
        if not self.is_in(*groups):
            allowed = ", ".join(sorted(group.value for group in groups))
            raise ForbiddenError(f"This needs one of the groups: {allowed}.")
