"""Signing and sending a delivery (decision 0029).

Signatures are the `standardwebhooks` reference library's (`v1`: HMAC-SHA256 of `id.timestamp.body`
with the secret's bytes), one per live secret, space-separated.

Sending re-checks the URL (services/common/webhook_destinations.py: what the name resolves to now)
and connects to one of the addresses that check returned, never to a second resolution: DNS cannot
point the connection elsewhere in between. TLS is verified against the URL's host name (SNI and
certificate), and the `Host` header is the URL's. Redirects are answers, not followed. The answer's
body is read raw (`identity` asked, nothing decompressed), its first 800 bytes at most.

An attempt has `timeout` seconds from its start to the end of reading the answer's first bytes, hard:
the name's resolution is waited for no longer than that, and a watchdog shuts the socket down at the
deadline, so a receiver that trickles its answer a byte at a time is cut off too. A 2xx any later is
a failure. Whatever goes wrong is an answer with an error,
never an exception: the attempt was claimed, and its outcome must be recorded.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import socket
import threading
import time
from datetime import datetime
from urllib.parse import urlsplit

from standardwebhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection

from services.booking.domain.deliveries import EXCERPT_CHARS, Answer
from services.booking.domain.webhooks import SealedSecret, Sealer
from services.common.webhook_destinations import UnsafeDestinationError, ascii_host, check_destination

# Names are resolved here, so that an attempt waits for a slow resolver no longer than its deadline (a
# lookup left behind finishes in the background; a few threads bound how many can be).
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-dns")


class StandardWebhooksSigner:
    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    def signature(self, secrets: list[SealedSecret], webhook_id: str, message_id: str, at: datetime, body: str) -> str:
        opened = [self.sealer.open(secret.sealed, webhook_id).decode() for secret in secrets]
        return " ".join(Webhook(secret).sign(message_id, at, body) for secret in opened)


def _host_header(host: str, port: int, default_port: int) -> str:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    named = f"[{host}]" if isinstance(literal, ipaddress.IPv6Address) else host
    return named if port == default_port else f"{named}:{port}"


class PinnedSender:
    def __init__(self, allow_loopback: bool = False) -> None:
        self.allow_loopback = allow_loopback

    def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
        started = time.monotonic()

        def elapsed_ms() -> float:
            return (time.monotonic() - started) * 1000

        resolving = _RESOLVER.submit(check_destination, url, allow_loopback=self.allow_loopback)
        try:
            destination = resolving.result(timeout=timeout)
            target = urlsplit(url)
            host = ascii_host(destination.host)
        except concurrent.futures.TimeoutError:
            return Answer(
                None, f"{urlsplit(url).hostname} did not resolve within {timeout:g} s", duration_ms=elapsed_ms()
            )
        except (UnsafeDestinationError, ValueError) as error:
            return Answer(None, f"unsafe destination: {error}", duration_ms=elapsed_ms())
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            return Answer(None, f"no answer within {timeout:g} s", duration_ms=elapsed_ms())
        https = target.scheme == "https"
        connection = (
            HTTPSConnection(
                destination.addresses[0],
                destination.port,
                timeout=left,
                server_hostname=host,
                assert_hostname=host,
                cert_reqs="CERT_REQUIRED",
            )
            if https
            else HTTPConnection(destination.addresses[0], destination.port, timeout=left)
        )
        cut_off = threading.Event()
        # The socket, once connected: http.client hands it to the response and forgets it when the
        # answer ends the connection, so the watchdog keeps its own reference.
        sockets: list[socket.socket] = []

        def cut() -> None:  # the deadline: whatever the connection is waiting for fails now
            cut_off.set()
            for sock in [*sockets, *([connection.sock] if connection.sock is not None else [])]:
                with contextlib.suppress(OSError):  # closed meanwhile: nothing left to cut
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(left, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            path = (target.path or "/") + (f"?{target.query}" if target.query else "")
            sent = {
                **headers,
                "host": _host_header(host, destination.port, 443 if https else 80),
                "accept-encoding": "identity",
            }
            # Read raw and lazily: a receiver's gzip bomb is never inflated, and only its start is read.
            connection.request("POST", path, body=body, headers=sent, preload_content=False, decode_content=False)
            if connection.sock is not None:
                sockets.append(connection.sock)
            response = connection.getresponse()
            excerpt = response.read(EXCERPT_CHARS * 4, decode_content=False).decode("utf-8", "replace")
            status = response.status
        except Exception as error:  # no answer in time, refused, reset, TLS: all a failed attempt
            took = elapsed_ms()
            if cut_off.is_set():
                return Answer(None, f"no answer within {timeout:g} s", duration_ms=took)
            return Answer(None, f"{type(error).__name__}: {error}"[:EXCERPT_CHARS], duration_ms=took)
        finally:
            watchdog.cancel()
            watchdog.join()  # a cut already under way ends before the socket is closed (and its number reused)
            connection.close()
        took = elapsed_ms()
        if cut_off.is_set() or took > timeout * 1000:
            return Answer(status, f"answered after {took / 1000:.1f} s (over {timeout:g} s)", excerpt, took)
        return Answer(status, None if 200 <= status < 300 else f"HTTP {status}", excerpt, took)
