"""Signing and sending a delivery (decision 0029).

Signatures are the `standardwebhooks` reference library's (`v1`: HMAC-SHA256 of `id.timestamp.body`
with the secret's bytes), one per live secret, space-separated.

Sending re-checks the URL (services/common/webhook_destinations.py: what the name resolves to now)
and connects to one of the addresses that check returned, never to a second resolution: DNS cannot
point the connection elsewhere in between. TLS is verified against the URL's host name (SNI and
certificate), the `Host` header is the URL's. Redirects are answers, not followed. The whole attempt,
connection to the start of the answer's body, has `timeout` seconds: a 2xx any later is a failure.
"""

from __future__ import annotations

import time
from datetime import datetime

import urllib3
from standardwebhooks import Webhook

from services.booking.domain.deliveries import EXCERPT_CHARS, Answer
from services.booking.domain.webhooks import SealedSecret, Sealer
from services.common.webhook_destinations import UnsafeDestinationError, check_destination


class StandardWebhooksSigner:
    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    def signature(self, secrets: list[SealedSecret], webhook_id: str, message_id: str, at: datetime, body: str) -> str:
        opened = [self.sealer.open(secret.sealed, webhook_id).decode() for secret in secrets]
        return " ".join(Webhook(secret).sign(message_id, at, body) for secret in opened)


class PinnedSender:
    def __init__(self, allow_loopback: bool = False) -> None:
        self.allow_loopback = allow_loopback

    def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        started = time.monotonic()

        def elapsed_ms() -> float:
            return (time.monotonic() - started) * 1000

        try:
            destination = check_destination(url, allow_loopback=self.allow_loopback)
        except UnsafeDestinationError as error:
            return Answer(None, f"unsafe destination: {error}", duration_ms=elapsed_ms())
        target = urllib3.util.parse_url(url)
        path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        address = destination.addresses[0]
        host_header = destination.host if destination.port in {80, 443} else f"{destination.host}:{destination.port}"
        pool: urllib3.HTTPConnectionPool
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                destination.port,
                server_hostname=destination.host,
                assert_hostname=destination.host,
                cert_reqs="CERT_REQUIRED",
                retries=False,
                maxsize=1,
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, destination.port, retries=False, maxsize=1)
        try:
            response = pool.urlopen(
                "POST",
                path,
                body=body,
                headers={**headers, "host": host_header},
                redirect=False,
                retries=False,
                preload_content=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
            try:
                excerpt = response.read(EXCERPT_CHARS * 4, decode_content=False).decode("utf-8", "replace")
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as error:
            return Answer(None, f"{type(error).__name__}: {error}"[:EXCERPT_CHARS], duration_ms=elapsed_ms())
        finally:
            pool.close()
        took = elapsed_ms()
        if took > timeout * 1000:
            return Answer(response.status, f"answered after {took / 1000:.1f} s (over {timeout:g} s)", excerpt, took)
        return Answer(
            response.status, None if 200 <= response.status < 300 else f"HTTP {response.status}", excerpt, took
        )
