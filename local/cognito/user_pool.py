"""The local user pool: its signing key, its groups and a mint of Cognito-shaped ID and access tokens.

In AWS, Cognito signs a user's tokens with the pool's keys after sign-in. Locally a persistent RSA key
pair plays the pool's key and `mint` issues tokens with the claims Cognito puts in them (`sub`,
`cognito:groups`, `iss`, `aud` or `client_id`, `token_use`, times). The mint exists only here;
nothing in `services/` can issue a token. The gateway checks them as the Cognito authorizer does
(`local/apigateway/authorizer.py`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.account import REGION

USER_POOL_ID = f"{REGION}_appointmentslocal"
CLIENT_ID = "appointments-local-client"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{USER_POOL_ID}"
GROUPS = ("customers", "providers", "admins", "ops")
DEFAULT_TTL_SECONDS = 3600  # Cognito's default ID token lifetime


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
