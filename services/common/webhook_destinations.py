"""Where a webhook may be delivered: SSRF-safe checks of a subscriber's URL (issue 21, item 2).

A webhook is a request our function makes to a URL someone else chose, so the URL must not reach
what only our network reaches: the instance metadata service, the VPC, localhost. The checks:

- `https` only, unless the stage allows loopback (the local stack), and then only `http` to a
  loopback address;
- no user name or password in the URL (they would be sent, and logged by the receiver);
- the host resolved, and every address it resolves to public (`ipaddress`'s `is_global`): no
  private, loopback, link-local (the metadata service, 169.254.169.254, and its IPv6 fd00:ec2::254),
  shared (100.64/10), multicast or reserved address. An IPv6 address must also be global unicast
  (2000::/3, which leaves out the IPv4-compatible, IPv4-translated and site-local forms), and an
  IPv4 address inside one (IPv4-mapped, NAT64's 64:ff9b::/96, 6to4, Teredo) is judged as itself.
  One bad address refuses the URL: DNS may answer either. The message does not say which addresses
  a name resolved to (the resolver may know internal names);
- a host name must be ASCII: an internationalised one is written in its `xn--` form. IDNA 2003 and
  2008 encode some names differently (`straße`), so encoding it here could deliver to another domain
  than the subscriber meant;
- the addresses are returned, so the delivery connects to one of them and no second resolution can
  answer differently (DNS rebinding). Redirects are never followed (a delivery's 3xx is a failure).

Decimal, octal and hexadecimal IPv4 forms (`http://2130706433/`) need no special case: they are
checked as what they resolve to.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from msgspec import Struct

Resolver = Callable[..., list[tuple[Any, ...]]]


class UnsafeDestinationError(ValueError):
    """The URL may not be a webhook's destination; the message says why, for the subscriber."""


class Destination(Struct, frozen=True):
    url: str
    host: str
    port: int
    addresses: tuple[str, ...]  # connect to one of these, never to a second resolution of `host`


_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _addresses(text: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The address, and the IPv4 address it carries, if any: each is judged."""
    address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone index names no other host
    if not isinstance(address, ipaddress.IPv6Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    carried = [address.sixtofour, *(address.teredo or ())]
    return [address, *(embedded for embedded in carried if embedded is not None)]


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if address.is_multicast or not address.is_global:
        return False
    return not isinstance(address, ipaddress.IPv6Address) or address in _GLOBAL_UNICAST


def ascii_host(host: str) -> str:
    """The host as it goes on the wire (TLS, `Host`): as written, if it is ASCII and a valid name or
    an IP literal; else ValueError."""
    if not host.isascii():
        raise ValueError(f"write the host name {host!r} in its ASCII form (xn--…)")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(0 < len(label) <= 63 for label in labels):
        raise ValueError(f"{host!r} is no valid host name")
    return host


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
        ascii_host(host)
    except ValueError as error:
        raise UnsafeDestinationError(str(error)) from error
    try:
        found = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UnsafeDestinationError(f"{host} does not resolve") from error
    addresses = tuple(dict.fromkeys(str(entry[4][0]) for entry in found))
    if not addresses:
        raise UnsafeDestinationError(f"{host} does not resolve")
    checked = [judged for text in addresses for judged in _addresses(text)]
    if allow_loopback and all(address.is_loopback for address in checked):
        return Destination(url, host, port, addresses)  # the local stack's receivers, http or https
    if parts.scheme != "https":
        raise UnsafeDestinationError("an https URL is required")
    if not all(_public(address) for address in checked):
        raise UnsafeDestinationError(f"{host} resolves to an address that is not public")
    return Destination(url, host, port, addresses)
