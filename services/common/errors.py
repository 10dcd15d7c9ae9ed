"""Domain errors as types. Each knows its problem `code` and HTTP status; `http.py` maps them in one place."""

from __future__ import annotations

from http import HTTPStatus

from msgspec import Struct, field


class FieldError(Struct, frozen=True):
    """One invalid input: where (dotted path, e.g. `body.weekly.mon[0].start`) and why."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error a client can cause; never used for the service's own faults."""

    code = "BAD_REQUEST"
    status = HTTPStatus.BAD_REQUEST

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extensions(self) -> dict[str, object]:
        """Extra members of the problem document (RFC 9457 extension members)."""
        return {}

    def headers(self) -> dict[str, str]:
        """Extra response headers (e.g. `Retry-After`)."""
        return {}


class ValidationFailedError(DomainError):
    code = "VALIDATION_FAILED"
    status = HTTPStatus.BAD_REQUEST

    def __init__(self, detail: str, errors: list[FieldError]) -> None:
        super().__init__(detail)
        self.errors = errors


class NotFoundError(DomainError):
    code = "NOT_FOUND"
    status = HTTPStatus.NOT_FOUND


class ForbiddenError(DomainError):
    code = "FORBIDDEN"
    status = HTTPStatus.FORBIDDEN


class UnauthorizedError(DomainError):
    code = "UNAUTHORIZED"
    status = HTTPStatus.UNAUTHORIZED


MAX_FIELD_ERRORS = 100


class Problem(Struct):
    """An RFC 9457 problem document."""

    status: int
    code: str
    detail: str
    title: str = ""
    type: str = "about:blank"
    errors: list[FieldError] = field(default_factory=list)
    request_id: str | None = None
    extensions: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "type": self.type,
            "title": self.title or HTTPStatus(self.status).phrase,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.errors:  # at most MAX_FIELD_ERRORS, as the API document promises
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors[:MAX_FIELD_ERRORS]]
        if self.request_id:
            body["requestId"] = self.request_id
        # Extension members add to the document, never redefine its own (RFC 9457, section 3.2).
        return {**self.extensions, **body}


class BusyError(DomainError):
    """Other writers kept changing the same item faster than this request could: retry shortly."""

    code = "SERVICE_UNAVAILABLE"
    status = HTTPStatus.SERVICE_UNAVAILABLE

    def __init__(self, detail: str = "Other changes to this item kept winning; retry shortly.") -> None:
        super().__init__(detail)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class PreconditionFailedError(DomainError):
    """The client's `If-Match` names a version that is no longer current."""

    code = "PRECONDITION_FAILED"
    status = HTTPStatus.PRECONDITION_FAILED
