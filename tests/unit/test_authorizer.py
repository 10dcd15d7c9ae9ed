from __future__ import annotations

import time
from pathlib import Path

import pytest

from deploy.templates import TEMPLATES, load_template, resources_of_type
from local.apigateway.authorizer import AuthenticationError, claims_for_event, verify
from local.cognito.user_pool import CUSTOMER_POOL, GROUPS, STAFF_POOL, KeyPair, UserPool, UserPools, mint
from services.common.auth import STAFF_GROUPS, Group, Principal, parse_groups
from services.common.errors import ForbiddenError, UnauthorizedError

POOLS = UserPools.generate()
CUSTOMERS, STAFF = POOLS.customers, POOLS.staff


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_verify_accepts_a_fresh_id_token_and_returns_its_claims() -> None:
    claims = verify(POOLS, bearer(mint(CUSTOMERS, "alice", ["customers", "providers"])))
    assert claims["sub"] == "alice"
    assert claims["cognito:groups"] == ["customers", "providers"]
    assert claims["token_use"] == "id"
    assert claims["iss"] == CUSTOMER_POOL.issuer


def test_verify_accepts_the_raw_token_without_bearer() -> None:
    assert verify(POOLS, mint(STAFF, "alice", ["admins"]))["aud"] == STAFF_POOL.client_id


def test_verify_checks_each_token_against_the_pool_its_issuer_names() -> None:
    """The authorizer lists both pools; `iss` picks the pool, and that pool's key must have signed."""
    assert verify(POOLS, mint(STAFF, "root", ["admins"]))["iss"] == STAFF_POOL.issuer
    # the customer pool's key cannot sign for the staff pool, under its own key id or the staff key's
    for forged in (
        mint(CUSTOMERS, "mallory", ["admins"], issuer=STAFF_POOL.issuer, audience=STAFF_POOL.client_id),
        mint(
            UserPool(CUSTOMER_POOL, KeyPair(CUSTOMERS.key.private_key, STAFF.key.kid)),
            "mallory",
            ["admins"],
            issuer=STAFF_POOL.issuer,
            audience=STAFF_POOL.client_id,
        ),
    ):
        with pytest.raises(AuthenticationError, match="Unauthorized"):
            verify(POOLS, bearer(forged))
    # and each pool's tokens are for its own app client
    with pytest.raises(AuthenticationError, match="Unauthorized"):
        verify(POOLS, bearer(mint(STAFF, "root", ["admins"], audience=CUSTOMER_POOL.client_id)))


def test_verify_refuses_an_access_token_on_a_method_without_scopes() -> None:
    """API Gateway's Cognito authorizer takes access tokens only where a method declares OAuth scopes;
    none of ours does, so a valid access token of our own client is a 401."""
    token = mint(STAFF, "alice", ["admins"], token_use="access")
    with pytest.raises(AuthenticationError, match="Unauthorized"):
        verify(POOLS, bearer(token))


@pytest.mark.parametrize(
    ("case", "authorization", "message"),
    [
        ("missing header", None, "Unauthorized"),
        ("empty header", "", "Unauthorized"),
        ("not a JWT", "Bearer not-a-token", "Unauthorized"),
        ("expired", bearer(mint(CUSTOMERS, "alice", ["customers"], 60, now=time.time() - 3600)), "expired"),
        (
            "wrong issuer",
            bearer(mint(CUSTOMERS, "a", ["customers"], issuer="https://evil.example/pool")),
            "Unauthorized",
        ),
        ("wrong audience", bearer(mint(CUSTOMERS, "a", ["customers"], audience="another-client")), "Unauthorized"),
        ("wrong token use", bearer(mint(CUSTOMERS, "a", ["customers"], token_use="refresh")), "Unauthorized"),
        # Signed by another key that claims the staff key's id: the signature check must catch it.
        (
            "bad signature",
            bearer(mint(UserPool(STAFF_POOL, KeyPair(KeyPair.generate().private_key, STAFF.key.kid)), "a", ["admins"])),
            "Unauthorized",
        ),
        ("unknown key id", bearer(mint(UserPool(STAFF_POOL, KeyPair.generate()), "a", ["admins"])), "Unauthorized"),
    ],
)
def test_verify_refuses_bad_tokens_with_401(case: str, authorization: str | None, message: str) -> None:
    with pytest.raises(AuthenticationError, match=message):
        verify(POOLS, authorization)


def test_verify_refuses_a_tampered_payload() -> None:
    header, payload, signature = mint(CUSTOMERS, "alice", ["customers"]).split(".")
    forged = mint(CUSTOMERS, "mallory", ["providers"]).split(".")[1]
    with pytest.raises(AuthenticationError):
        verify(POOLS, f"{header}.{forged[:-2]}{payload[-2:]}.{signature}")


def test_claims_for_event_are_strings_as_the_rest_authorizer_passes_them() -> None:
    verified = verify(POOLS, mint(STAFF, "alice", ["admins", "ops"]))
    claims = claims_for_event({**verified, "iat": 0})
    assert claims["cognito:groups"] == "admins,ops"
    assert claims["iss"] == STAFF_POOL.issuer
    assert claims["iat"] == "Thu Jan 01 00:00:00 UTC 1970"
    assert all(isinstance(value, str) for value in claims.values())


def test_principal_parses_groups_in_every_shape_the_gateways_use() -> None:
    expected = frozenset({Group.CUSTOMERS, Group.OPS})
    assert parse_groups("customers,ops") == expected
    assert parse_groups("[customers ops]") == expected
    assert parse_groups(["customers", "ops", "unknown"]) == expected
    assert parse_groups(None) == frozenset()


def context(groups: str, issuer: str) -> dict[str, object]:
    """The request context API Gateway builds from a verified token's claims."""
    return {"authorizer": {"claims": {"sub": "bob", "cognito:groups": groups, "iss": issuer}}}


def test_principal_without_groups_is_forbidden() -> None:
    with pytest.raises(ForbiddenError, match="no group"):
        Principal.from_request_context(context("", CUSTOMER_POOL.issuer), STAFF_POOL.issuer)


def test_principal_without_claims_is_unauthorized() -> None:
    with pytest.raises(UnauthorizedError):
        Principal.from_request_context({"requestId": "x"}, STAFF_POOL.issuer)


def test_principal_takes_admins_and_ops_only_from_the_staff_pool() -> None:
    """A group named admins or ops in the customer pool (a mistake, or whoever can edit that pool) must not
    make its members staff: staff sign in to the staff pool, which requires MFA."""
    staff = Principal.from_request_context(context("admins,ops", STAFF_POOL.issuer), STAFF_POOL.issuer)
    assert staff.groups == {Group.ADMINS, Group.OPS}
    # a customer-pool token claiming admins: a customer still, never an admin
    customer = Principal.from_request_context(context("customers,admins", CUSTOMER_POOL.issuer), STAFF_POOL.issuer)
    assert customer.groups == {Group.CUSTOMERS}
    with pytest.raises(ForbiddenError):
        customer.require(Group.ADMINS, Group.OPS)
    # with only staff groups from the customer pool, or no issuer at all, nothing is granted
    for issuer in (CUSTOMER_POOL.issuer, ""):
        with pytest.raises(ForbiddenError, match="only by the staff user pool"):
            Principal.from_request_context(context("ops", issuer), STAFF_POOL.issuer)
    # and the staff pool grants only staff groups, should a customers group ever be made there
    mixed = Principal.from_request_context(context("providers,ops", STAFF_POOL.issuer), STAFF_POOL.issuer)
    assert mixed.groups == {Group.OPS}
    with pytest.raises(ForbiddenError, match="only by the customer user pool"):
        Principal.from_request_context(context("customers", STAFF_POOL.issuer), STAFF_POOL.issuer)


def test_principal_require_refuses_other_groups() -> None:
    principal = Principal("alice", frozenset({Group.CUSTOMERS}))
    principal.require(Group.CUSTOMERS, Group.ADMINS)
    with pytest.raises(ForbiddenError, match="admins, ops"):
        principal.require(Group.OPS, Group.ADMINS)


def test_key_pairs_persist_so_make_token_and_make_run_agree(tmp_path: Path) -> None:
    first = UserPools.load_or_create(tmp_path)
    second = UserPools.load_or_create(tmp_path)
    assert (second.customers.key.kid, second.staff.key.kid) == (first.customers.key.kid, first.staff.key.kid)
    assert first.customers.key.kid != first.staff.key.kid  # a key per pool
    assert verify(second, first.mint("alice", ["customers"]))["sub"] == "alice"
    assert verify(second, first.mint("root", ["admins"]))["iss"] == STAFF_POOL.issuer
    for stem in (CUSTOMER_POOL.key_file, STAFF_POOL.key_file):
        assert (tmp_path / f"{stem}.pem").stat().st_mode & 0o077 == 0


def test_the_mint_takes_the_pool_that_holds_the_groups() -> None:
    assert POOLS.for_groups(["admins", "ops"]) is STAFF
    assert POOLS.for_groups(["customers", "providers"]) is CUSTOMERS
    assert POOLS.for_groups([]) is CUSTOMERS
    with pytest.raises(ValueError, match="no user is in both"):
        POOLS.for_groups(["providers", "ops"])


def test_the_local_pools_the_template_and_the_services_know_the_same_groups() -> None:
    template = load_template(TEMPLATES / "auth.yaml")
    declared: dict[str, set[str]] = {}
    for group in resources_of_type(template, "AWS::Cognito::UserPoolGroup").values():
        pool = group["Properties"]["UserPoolId"]["Ref"]
        declared.setdefault(pool, set()).add(str(group["Properties"]["GroupName"]))
    assert declared == {"UserPool": set(CUSTOMER_POOL.groups), "StaffUserPool": set(STAFF_POOL.groups)}
    assert set(GROUPS) == {group.value for group in Group}
    assert set(STAFF_POOL.groups) == {group.value for group in STAFF_GROUPS}
