"""The local user pools: each one's signing key, groups and app client, and a mint of Cognito-shaped tokens.

In AWS there are two pools (`cloudformation/auth.yaml`, decision 0018): customers and providers sign
in to the customer pool; admins and ops to the staff pool, which requires MFA. Cognito signs a user's
tokens with its pool's keys after sign-in, and puts the pool in `iss`. Locally each pool has a
persistent RSA key pair of its own, and `mint` issues tokens with the claims Cognito puts in them
(`sub`, `cognito:groups`, `iss`, `aud` or `client_id`, `token_use`, times). The mint exists only here;
nothing in `services/` can issue a token. The gateway checks them as the Cognito authorizer does
(`local/apigateway/authorizer.py`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.account import REGION

DEFAULT_TTL_SECONDS = 3600  # Cognito's default ID token lifetime


@dataclass(frozen=True)
class PoolSpec:
    """A user pool as `auth.yaml` makes it: its id, its app client and the groups it holds."""

    name: str
    pool_id: str
    client_id: str
    groups: tuple[str, ...]
    key_file: str  # the stem of its key's files in the stack's state directory

    @property
    def issuer(self) -> str:
        """What Cognito puts in `iss`: the pool's URL."""
        return f"https://cognito-idp.{REGION}.amazonaws.com/{self.pool_id}"


CUSTOMER_POOL = PoolSpec(
    "customers",
    f"{REGION}_appointmentslocal",
    "appointments-local-client",
    ("customers", "providers"),
    "jwt-signing-key",
)
STAFF_POOL = PoolSpec(
    "staff", f"{REGION}_appointmentsstaff", "appointments-local-staff-client", ("admins", "ops"), "staff-signing-key"
)
GROUPS = CUSTOMER_POOL.groups + STAFF_POOL.groups


def auth_parameters() -> dict[str, str]:
    """What the root stack passes the services' stacks from the auth stack's outputs."""
    return {"StaffIssuer": STAFF_POOL.issuer}


class MixedPoolsError(ValueError):
    """Groups of both pools asked of one token: no Cognito user is in both."""


@dataclass(frozen=True)
class KeyPair:
    """One pool's signing key; `kid` names it as a user pool's JWKS would."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid=uuid.uuid4().hex)

    @classmethod
    def load_or_create(cls, directory: Path, stem: str = CUSTOMER_POOL.key_file) -> KeyPair:
        """The stack's persistent key, so `make token` and a running `make run` agree."""
        pem_path, kid_path = directory / f"{stem}.pem", directory / f"{stem}.kid"
        if pem_path.exists() and kid_path.exists():
            key = serialization.load_pem_private_key(pem_path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{pem_path} is not an RSA private key")
            return cls(key, kid_path.read_text().strip())
        pair = cls.generate()
        directory.mkdir(parents=True, exist_ok=True)
        pem_path.write_bytes(
            pair.private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        pem_path.chmod(0o600)
        kid_path.write_text(pair.kid)
        return pair


@dataclass(frozen=True)
class UserPool:
    """A pool with its signing key."""

    spec: PoolSpec
    key: KeyPair


@dataclass(frozen=True)
class UserPools:
    """Both local pools: what the gateway's authorizer trusts and what the mint signs with."""

    customers: UserPool
    staff: UserPool

    @classmethod
    def generate(cls) -> UserPools:
        return cls(UserPool(CUSTOMER_POOL, KeyPair.generate()), UserPool(STAFF_POOL, KeyPair.generate()))

    @classmethod
    def load_or_create(cls, directory: Path) -> UserPools:
        """The stack's persistent keys (one per pool), so `make token` and a running `make run` agree."""
        return cls(
            UserPool(CUSTOMER_POOL, KeyPair.load_or_create(directory, CUSTOMER_POOL.key_file)),
            UserPool(STAFF_POOL, KeyPair.load_or_create(directory, STAFF_POOL.key_file)),
        )

    def __iter__(self) -> Iterator[UserPool]:
        return iter((self.customers, self.staff))

    def by_issuer(self, issuer: object) -> UserPool | None:
        """The pool a token's `iss` names, as the authorizer picks among its provider ARNs."""
        return next((pool for pool in self if pool.spec.issuer == issuer), None)

    def for_groups(self, groups: Iterable[str]) -> UserPool:
        """The pool whose users are in `groups`: staff for admins and ops, else the customer pool."""
        wanted = set(groups)
        staff = wanted & set(STAFF_POOL.groups)
        if staff and wanted - staff:
            raise MixedPoolsError(
                f"{', '.join(sorted(staff))} come from the staff user pool and "
                f"{', '.join(sorted(wanted - staff))} from the customer pool: no user is in both; mint one token each"
            )
        return self.staff if staff else self.customers

    def mint(self, sub: str, groups: list[str], ttl_seconds: int = DEFAULT_TTL_SECONDS, **claims: Any) -> str:
        """A token of the pool that holds `groups` (see `for_groups`)."""
        return mint(self.for_groups(groups), sub, groups, ttl_seconds, **claims)


def mint(
    pool: UserPool,
    sub: str,
    groups: list[str],
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    *,
    now: float | None = None,
    issuer: str | None = None,
    audience: str | None = None,
    token_use: str = "id",
) -> str:
    """A Cognito-style ID token of `pool` for `sub` in `groups`.

    `groups` is not checked against the pool's: a test may build what a group of the same name made in
    the wrong pool would put in a token. The overrides exist to build bad tokens in tests."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "cognito:username": sub,
        "cognito:groups": groups,
        "iss": issuer if issuer is not None else pool.spec.issuer,
        "aud": audience if audience is not None else pool.spec.client_id,
        "token_use": token_use,
        "auth_time": issued,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if token_use == "access":
        # Access tokens name the client in `client_id` and carry no audience.
        claims["client_id"] = claims.pop("aud")
    return jwt.encode(claims, pool.key.private_key, algorithm="RS256", headers={"kid": pool.key.kid})
