"""Who may see and change what a customer has of a provider: a hold, a recurring series, a waitlist
entry (the lanes of issue 18, as bookings keep them). Its customer and the owner of its provider's
calendar see and change it; admins too; ops see it and change nothing; anyone else is told it does
not exist. A group counts only as the token's pool grants it (decision 0018)."""

from __future__ import annotations

from typing import Protocol

from services.common.auth import Group, Principal


class CustomersResource(Protocol):
    @property
    def customer_id(self) -> str: ...

    @property
    def provider_owner(self) -> str | None: ...


def owns_its_calendar(principal: Principal, resource: CustomersResource) -> bool:
    return principal.is_in(Group.PROVIDERS) and resource.provider_owner == principal.sub


def is_its_customer(principal: Principal, resource: CustomersResource) -> bool:
    return principal.is_in(Group.CUSTOMERS) and resource.customer_id == principal.sub


def may_change(principal: Principal, resource: CustomersResource) -> bool:
    return (
        principal.is_in(Group.ADMINS) or owns_its_calendar(principal, resource) or is_its_customer(principal, resource)
    )


def may_see(principal: Principal, resource: CustomersResource) -> bool:
    return principal.is_in(Group.OPS) or may_change(principal, resource)
