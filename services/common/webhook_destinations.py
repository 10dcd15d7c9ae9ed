"""Where a webhook may be delivered: SSRF-safe checks of a subscriber's URL (issue 21, item 2).

A webhook is a request our function makes to a URL someone else chose, so the URL must not reach
what only our network reaches: the instance metadata service, the VPC, localhost. The checks:

- `https` only, unless the stage allows loopback (the local stack), and then only `http` to a
  loopback address;
- no user name or password in the URL (they would be sent, and logged by the receiver);
- the host resolved, and every address it resolves to public (`ipaddress`'s `is_global`, IPv4 in
  IPv6 unwrapped): no private, loopback, link-local (the metadata service, 169.254.169.254, and its
  IPv6 fd00:ec2::254), shared (100.64/10), multicast or reserved address. One bad address refuses
  the URL: DNS may answer either;
- the addresses are returned, so the delivery connects to one of them and no second resolution can
  answer differently (DNS rebinding). Redirects are never followed (a delivery's 3xx is a failure).

Decimal, octal and hexadecimal IPv4 forms (`http://2130706433/`) need no special case: they are
checked as what they resolve to.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Resolver = Callable[..., list[tuple[Any, ...]]]


class UnsafeDestinationError(ValueError):
    """The URL may not be a webhook's destination; the message says why, for the subscriber."""


@dataclass(frozen=True)
class Destination:
    url: str
    host: str
    port: int
    addresses: tuple[str, ...]  # connect to one of these, never to a second resolution of `host`


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone index names no other host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def check_destination(url: str, *, allow_loopback: bool = False, resolve: Resolver = socket.getaddrinfo) -> Destination:
    """The URL's checked destination, or `UnsafeDestinationError`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeDestinationError(f"not a URL: {error}") from error
    host = parts.hostname
    if parts.scheme not in {"https", "http"} or not host:
        raise UnsafeDestinationError("an https URL with a host is required")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestinationError("a URL with a user name or password is refused")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        found = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UnsafeDestinationError(f"{host} does not resolve") from error
    addresses = tuple(dict.fromkeys(str(entry[4][0]) for entry in found))
    if not addresses:
        raise UnsafeDestinationError(f"{host} does not resolve")
    checked = [_address(text) for text in addresses]
    if allow_loopback and all(address.is_loopback for address in checked):
        return Destination(url, host, port, addresses)  # the local stack's receivers, http or https
    if parts.scheme != "https":
        raise UnsafeDestinationError("an https URL is required")
    unsafe = [str(address) for address in checked if not address.is_global or address.is_multicast]
    if unsafe:
        raise UnsafeDestinationError(f"{host} resolves to an address that is not public ({', '.join(unsafe)})")
    return Destination(url, host, port, addresses)
