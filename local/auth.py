"""Development identity for the local stack: a Cognito-shaped token mint and the authorizer's checks.

In AWS, API Gateway's Cognito user-pool authorizer verifies the bearer token (signature against the
pool's keys, issuer, audience or client id, expiry, token use) before any function runs, and hands
the function the token's claims as strings under `requestContext.authorizer.claims`. `verify` does
exactly those checks against a local RSA key pair, and `claims_for_event` shapes the claims the way
the authorizer does. The mint exists only here; nothing in `services/` can issue a token.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REGION = "us-east-1"
USER_POOL_ID = f"{REGION}_appointmentslocal"
CLIENT_ID = "appointments-local-client"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{USER_POOL_ID}"
GROUPS = ("customers", "providers", "admins", "ops")
DEFAULT_TTL_SECONDS = 3600  # Cognito's default ID token lifetime


class AuthenticationError(Exception):
    """The request carries no valid token: API Gateway answers 401."""


@dataclass(frozen=True)
class KeyPair:
    """The local signing key; `kid` names it as a user pool's JWKS would."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid=uuid.uuid4().hex)

    @classmethod
    def load_or_create(cls, directory: Path) -> KeyPair:
        """The stack's persistent key, so `make token` and a running `make run` agree."""
        pem_path, kid_path = directory / "jwt-signing-key.pem", directory / "jwt-signing-key.kid"
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


def mint(
    key: KeyPair,
    sub: str,
    groups: list[str],
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    *,
    now: float | None = None,
    issuer: str = ISSUER,
    audience: str = CLIENT_ID,
    token_use: str = "id",
) -> str:
    """A Cognito-style ID token for `sub` in `groups` (the overrides exist to build bad tokens in tests)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "cognito:username": sub,
        "cognito:groups": groups,
        "iss": issuer,
        "aud": audience,
        "token_use": token_use,
        "auth_time": issued,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if token_use == "access":
        # Access tokens name the client in `client_id` and carry no audience.
        claims["client_id"] = claims.pop("aud")
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def verify(key: KeyPair, authorization: str | None, *, leeway_seconds: int = 0) -> dict[str, Any]:
    """Check a bearer token as the Cognito authorizer does; return its claims or raise."""
    if not authorization:
        raise AuthenticationError("Unauthorized")
    token = authorization.removeprefix("Bearer ").strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise AuthenticationError("Unauthorized") from error
    if header.get("kid") != key.kid or header.get("alg") != "RS256":
        raise AuthenticationError("Unauthorized")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            issuer=ISSUER,
            leeway=leeway_seconds,
            options={"require": ["exp", "iat", "iss", "sub", "token_use"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as error:
        raise AuthenticationError("The incoming token has expired") from error
    except jwt.PyJWTError as error:
        raise AuthenticationError("Unauthorized") from error
    use = claims["token_use"]
    if use == "id":
        if claims.get("aud") != CLIENT_ID:
            raise AuthenticationError("Unauthorized")
    elif use == "access":
        if claims.get("client_id") != CLIENT_ID:
            raise AuthenticationError("Unauthorized")
    else:
        raise AuthenticationError("Unauthorized")
    return claims


def _cognito_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%a %b %d %H:%M:%S UTC %Y")


def claims_for_event(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as a REST API's Cognito authorizer passes them: every value a string, groups comma-joined."""
    shaped: dict[str, str] = {}
    for name, value in claims.items():
        if name in {"exp", "iat", "auth_time"}:
            shaped[name] = _cognito_time(int(value))
        elif isinstance(value, list):
            shaped[name] = ",".join(str(item) for item in value)
        else:
            shaped[name] = str(value)
    return shaped
