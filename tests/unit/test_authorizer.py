from __future__ import annotations

import time
from pathlib import Path

import pytest

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.apigateway.authorizer import AuthenticationError, claims_for_event, verify
from local.cognito.user_pool import CLIENT_ID, GROUPS, KeyPair, mint
from services.common.auth import Group, Principal, parse_groups
from services.common.errors import ForbiddenError, UnauthorizedError

KEY = KeyPair.generate()


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_verify_accepts_a_fresh_id_token_and_returns_its_claims() -> None:
    claims = verify(KEY, bearer(mint(KEY, "alice", ["customers", "ops"])))
    assert claims["sub"] == "alice"
    assert claims["cognito:groups"] == ["customers", "ops"]
    assert claims["token_use"] == "id"


def test_verify_accepts_the_raw_token_without_bearer() -> None:
    assert verify(KEY, mint(KEY, "alice", ["admins"]))["aud"] == CLIENT_ID


def test_verify_refuses_an_access_token_on_a_method_without_scopes() -> None:
    """API Gateway's Cognito authorizer takes access tokens only where a method declares OAuth scopes;
    none of ours does, so a valid access token of our own client is a 401."""
    token = mint(KEY, "alice", ["admins"], token_use="access")
    with pytest.raises(AuthenticationError, match="Unauthorized"):
        verify(KEY, bearer(token))


@pytest.mark.parametrize(
    ("case", "authorization", "message"),
    [
        ("missing header", None, "Unauthorized"),
        ("empty header", "", "Unauthorized"),
        ("not a JWT", "Bearer not-a-token", "Unauthorized"),
        ("expired", bearer(mint(KEY, "alice", ["customers"], 60, now=time.time() - 3600)), "expired"),
        (
            "wrong issuer",
            bearer(mint(KEY, "a", ["customers"], issuer="https://evil.example/pool")),
            "Unauthorized",
        ),
        ("wrong audience", bearer(mint(KEY, "a", ["customers"], audience="another-client")), "Unauthorized"),
        ("wrong token use", bearer(mint(KEY, "a", ["customers"], token_use="refresh")), "Unauthorized"),
        # Signed by another key that claims our key id: the signature check must catch it.
        (
            "bad signature",
            bearer(mint(KeyPair(KeyPair.generate().private_key, KEY.kid), "a", ["admins"])),
            "Unauthorized",
        ),
        ("unknown key id", bearer(mint(KeyPair.generate(), "a", ["admins"])), "Unauthorized"),
    ],
)
def test_verify_refuses_bad_tokens_with_401(case: str, authorization: str | None, message: str) -> None:
    with pytest.raises(AuthenticationError, match=message):
        verify(KEY, authorization)


def test_verify_refuses_a_tampered_payload() -> None:
    header, payload, signature = mint(KEY, "alice", ["customers"]).split(".")
    forged = mint(KEY, "mallory", ["admins"]).split(".")[1]
    with pytest.raises(AuthenticationError):
        verify(KEY, f"{header}.{forged[:-2]}{payload[-2:]}.{signature}")


def test_claims_for_event_are_strings_as_the_rest_authorizer_passes_them() -> None:
    verified = verify(KEY, mint(KEY, "alice", ["customers", "ops"]))
    claims = claims_for_event({**verified, "iat": 0})
    assert claims["cognito:groups"] == "customers,ops"
    assert claims["iat"] == "Thu Jan 01 00:00:00 UTC 1970"
    assert all(isinstance(value, str) for value in claims.values())


def test_principal_parses_groups_in_every_shape_the_gateways_use() -> None:
    expected = frozenset({Group.CUSTOMERS, Group.OPS})
    assert parse_groups("customers,ops") == expected
    assert parse_groups("[customers ops]") == expected
    assert parse_groups(["customers", "ops", "unknown"]) == expected
    assert parse_groups(None) == frozenset()


def test_principal_without_groups_is_forbidden() -> None:
    context = {"authorizer": {"claims": {"sub": "bob", "cognito:groups": ""}}}
    with pytest.raises(ForbiddenError):
        Principal.from_request_context(context)


def test_principal_without_claims_is_unauthorized() -> None:
    with pytest.raises(UnauthorizedError):
        Principal.from_request_context({"requestId": "x"})


def test_principal_require_refuses_other_groups() -> None:
    principal = Principal("alice", frozenset({Group.CUSTOMERS}))
    principal.require(Group.CUSTOMERS, Group.ADMINS)
    with pytest.raises(ForbiddenError, match="admins, ops"):
        principal.require(Group.OPS, Group.ADMINS)


def test_key_pair_persists_so_make_token_and_make_run_agree(tmp_path: Path) -> None:
    first = KeyPair.load_or_create(tmp_path)
    second = KeyPair.load_or_create(tmp_path)
    assert second.kid == first.kid
    assert verify(second, mint(first, "alice", ["customers"]))["sub"] == "alice"
    assert (tmp_path / "jwt-signing-key.pem").stat().st_mode & 0o077 == 0


def test_the_local_pool_the_template_and_the_services_know_the_same_groups() -> None:
    template = load_template(TEMPLATES / "auth.yaml")
    declared = {
        str(group["Properties"]["GroupName"])
        for group in resources_of_type(template, "AWS::Cognito::UserPoolGroup").values()
    }
    assert set(GROUPS) == declared == {group.value for group in Group}
