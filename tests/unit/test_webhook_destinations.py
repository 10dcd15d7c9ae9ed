"""SSRF-safe webhook destinations: only https to public addresses, every address a name resolves to
checked (so a DNS name pointing inside is refused as its address would be), odd IPv4 forms judged by
what they resolve to, loopback only where the stage allows it, and the addresses kept to connect to."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from services.common.webhook_destinations import UnsafeDestinationError, ascii_host, check_destination

PUBLIC = "93.184.216.34"


def resolver(*answers: str) -> Any:
    """A resolver answering these addresses for any name, as getaddrinfo does."""

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        family = socket.AF_INET6 if any(":" in a for a in answers) else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port)) for address in answers]

    return resolve


def literal(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
    """How the system's resolver reads an IP literal, odd IPv4 forms included (`inet_aton`'s rules:
    `2130706433`, `0x7f.1`), with no lookup."""
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        address = socket.inet_ntoa(socket.inet_aton(host))
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return [(family, socket.SOCK_STREAM, 6, "", (address, port))]


def test_an_https_url_on_a_public_address_is_kept_with_its_addresses() -> None:
    destination = check_destination("https://hooks.example.com/in?x=1", resolve=resolver(PUBLIC))
    assert (destination.host, destination.port, destination.addresses) == ("hooks.example.com", 443, (PUBLIC,))


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/",  # private
        "https://172.16.5.4/",
        "https://192.168.1.1/",
        "https://127.0.0.1/",  # loopback
        "https://169.254.169.254/latest/meta-data/",  # the instance metadata service
        "https://[fd00:ec2::254]/",  # its IPv6 address
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",  # IPv4 in IPv6
        "https://0.0.0.0/",
        "https://100.64.0.1/",  # shared address space
        "https://224.0.0.1/",  # multicast
        "https://2130706433/",  # 127.0.0.1 in decimal
        "https://0x7f.1/",  # and in hexadecimal
        "https://[64:ff9b::a9fe:a9fe]/",  # the metadata service through NAT64
        "https://[64:ff9b::a00:1]/",  # 10.0.0.1 through NAT64
        "https://[::127.0.0.1]/",  # IPv4-compatible (deprecated)
        "https://[::ffff:0:a9fe:a9fe]/",  # IPv4-translated
        "https://[fec0::1]/",  # site-local (deprecated)
        "https://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
        "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",  # Teredo of 10.0.0.1 (its client, inverted)
    ],
)
def test_an_address_that_is_not_public_is_refused_in_any_form(url: str) -> None:
    with pytest.raises(UnsafeDestinationError, match="not public"):
        check_destination(url, resolve=literal)


@pytest.mark.parametrize("answers", [("10.1.2.3",), (PUBLIC, "169.254.169.254"), ("fd00:ec2::254",), ("127.0.0.1",)])
def test_a_name_resolving_inside_is_refused_even_when_one_answer_is_public(answers: tuple[str, ...]) -> None:
    with pytest.raises(UnsafeDestinationError, match="not public") as refused:
        check_destination("https://innocent.example.com/hook", resolve=resolver(*answers))
    # what the name resolved to stays ours: the resolver may know internal names
    assert not any(answer in str(refused.value) for answer in answers)


def test_a_public_ipv6_address_passes_and_a_name_goes_out_idna_encoded() -> None:
    v6 = check_destination("https://[2606:2800:220:1:248:1893:25c8:1946]/", resolve=literal)
    assert v6.addresses == ("2606:2800:220:1:248:1893:25c8:1946",)
    # An internationalised name only in its ASCII form: IDNA 2003 and 2008 differ on some (straße).
    assert ascii_host("xn--bcher-kva.example") == "xn--bcher-kva.example" and ascii_host("::1") == "::1"
    with pytest.raises(ValueError, match="ASCII form"):
        ascii_host("straße.de")
    with pytest.raises(UnsafeDestinationError, match="ASCII form"):
        check_destination("https://bücher.example/hook", resolve=resolver(PUBLIC))
    with pytest.raises(UnsafeDestinationError, match="no valid host name"):
        check_destination("https://" + "a" * 64 + ".example/", resolve=resolver(PUBLIC))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/", "https URL is required"),
        ("ftp://hooks.example.com/", "https URL with a host"),
        ("https:///nohost", "https URL with a host"),
        ("https://user:secret@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com:99999/", "not a URL"),
    ],
)
def test_what_is_no_https_url_to_a_host_is_refused_before_any_lookup(url: str, why: str) -> None:
    with pytest.raises(UnsafeDestinationError, match=why):
        check_destination(url, resolve=resolver(PUBLIC))


def test_loopback_only_where_the_stage_allows_it_and_then_nothing_else_inside() -> None:
    local = check_destination("http://127.0.0.1:8123/hook", allow_loopback=True, resolve=literal)
    assert (local.port, local.addresses) == (8123, ("127.0.0.1",))
    with pytest.raises(UnsafeDestinationError):
        check_destination("http://127.0.0.1:8123/hook", resolve=literal)
    with pytest.raises(UnsafeDestinationError):
        check_destination("http://10.0.0.1/hook", allow_loopback=True, resolve=literal)
    with pytest.raises(UnsafeDestinationError, match="does not resolve"):
        check_destination("https://nowhere.invalid/", resolve=resolver())
