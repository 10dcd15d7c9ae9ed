"""Cross-origin access for browser clients (a clinic's website calling the API): one policy, three places.

The stage's `AllowedOrigins` parameter (comma-separated `scheme://host[:port]`; empty: CORS off) is
held here. The functions add the headers to their own answers (`services/common/http.py`); packaging
writes the preflight API Gateway answers without a function from the same constants
(`deploy/openapi.py`); the local gateway answers preflight by `preflight_allowed` (`local/apigateway/`).

Never credentials: the API authenticates with a bearer token the page sends itself, not with cookies,
so `Access-Control-Allow-Credentials` is never sent, and an allowed origin is echoed, never `*`
(decision 0019).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from msgspec import Struct

# What a page may send besides the CORS-safelisted headers: the token, JSON bodies, optimistic
# concurrency, idempotent retries, and a trace header to follow a request into X-Ray.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "If-Match", "Idempotency-Key", "X-Amzn-Trace-Id")
# What a page may read besides the CORS-safelisted response headers: the version for If-Match, where
# a created resource lives, when to retry, and the request id to quote to support.
EXPOSED_HEADERS = ("ETag", "Location", "Retry-After", "x-amzn-RequestId")
# How long a browser may reuse a preflight answer (Chromium caps it at 7,200 s, Firefox at 86,400 s).
MAX_AGE_SECONDS = 600

# An origin as browsers send it: scheme, host and an optional port, nothing else (no path, no `*`).
ORIGIN = r"https?://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?"
# The parameter's own pattern (root.yaml and api.yaml use this very text): empty, or origins joined by commas.
ALLOWED_ORIGINS_PATTERN = f"^$|^{ORIGIN}(,{ORIGIN})*$"
_ALLOWED_ORIGINS = re.compile(ALLOWED_ORIGINS_PATTERN)


class InvalidOriginsError(ValueError):
    """`AllowedOrigins` is not a comma-separated list of origins."""


def parse_origins(text: str) -> frozenset[str]:
    """The origins an `AllowedOrigins` value names; empty for CORS off."""
    if not _ALLOWED_ORIGINS.fullmatch(text):
        raise InvalidOriginsError(f"AllowedOrigins {text!r} is not a comma-separated list of scheme://host[:port]")
    return frozenset(origin for origin in text.split(",") if origin)


class CorsPolicy(Struct, frozen=True):
    """Which origins may read the API's answers; none means CORS is off and no header is ever added."""

    allowed_origins: frozenset[str] = frozenset()

    @classmethod
    def from_text(cls, text: str) -> CorsPolicy:
        return cls(parse_origins(text))

    @property
    def enabled(self) -> bool:
        return bool(self.allowed_origins)

    def allows(self, origin: str | None) -> bool:
        """Whether `origin` (the request's `Origin` header) is one of the allowed, compared exactly."""
        return origin is not None and origin in self.allowed_origins

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers of an actual (not preflight) answer to a request from `origin`.

        Off: none. On: `Vary: Origin` always (the answer differs by origin, so no cache may hand one
        origin's answer to another), and the allow and expose headers only for an allowed origin."""
        if not self.enabled:
            return {}
        headers = {"Vary": "Origin"}
        if self.allows(origin):
            assert origin is not None
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
        return headers

    def preflight_allowed(self, origin: str | None, method: str | None, methods: Iterable[str]) -> bool:
        """Whether a preflight from `origin` asking for `method` (Access-Control-Request-Method) on a
        resource offering `methods` is granted. Requested headers are not judged: the answer lists
        what is allowed and the browser compares."""
        return self.allows(origin) and method is not None and method in set(methods)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A request header by name, whatever its case (HTTP/2 clients send lower case)."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None
