"""API Gateway's Cognito user-pool authorizer, as the local gateway applies it to secured routes.

In AWS, the authorizer verifies the bearer token before any function runs: it takes the pool the
token's issuer names among its provider ARNs (ours lists two: the customer pool and the staff pool,
decision 0018), then checks the signature against that pool's keys, the issuer, expiry and, on a
method that declares no OAuth scopes, an ID token for the app client. It hands the function the
token's claims as strings under `requestContext.authorizer.claims`, `iss` among them. `verify` does
exactly those checks against the local pools' keys (`local/cognito/`), and `claims_for_event` shapes
the claims the way the authorizer does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import jwt

from local.cognito.user_pool import UserPools


class AuthenticationError(Exception):
    """The request carries no valid token: API Gateway answers 401."""


def verify(
    pools: UserPools, authorization: str | None, *, leeway_seconds: int = 0, now: float | None = None
) -> dict[str, Any]:
    """Check a bearer token as the Cognito authorizer does; return its claims or raise.

    `now` is the local stack's clock (`local/clock.py`): expiry is judged at its time, not the
    machine's, so a token minted after the clock moved is valid and one minted before may expire."""
    at = time.time() if now is None else now
    if not authorization:
        raise AuthenticationError("Unauthorized")
    token = authorization.removeprefix("Bearer ").strip()
    try:
        header = jwt.get_unverified_header(token)
        # The issuer picks the pool (and so the keys) to check against; the signature then proves it.
        pool = pools.by_issuer(jwt.decode(token, options={"verify_signature": False}).get("iss"))
    except jwt.PyJWTError as error:
        raise AuthenticationError("Unauthorized") from error
    if pool is None or header.get("kid") != pool.key.kid or header.get("alg") != "RS256":
        raise AuthenticationError("Unauthorized")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            pool.key.private_key.public_key(),
            algorithms=["RS256"],
            issuer=pool.spec.issuer,
            options={
                "require": ["exp", "iat", "iss", "sub", "token_use"],
                "verify_aud": False,
                "verify_exp": False,  # judged below, at the stack's time
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as error:
        raise AuthenticationError("Unauthorized") from error
    if not isinstance(claims["exp"], int | float) or not isinstance(claims["iat"], int | float):
        raise AuthenticationError("Unauthorized")
    if claims["exp"] <= at - leeway_seconds:
        raise AuthenticationError("The incoming token has expired")
    if claims["iat"] > at + leeway_seconds:
        raise AuthenticationError("Unauthorized")
    # A method without OAuth scopes (every one of ours) takes ID tokens only: an access token, whose
    # use is to carry scopes, is refused as API Gateway refuses it.
    if claims["token_use"] != "id" or claims.get("aud") != pool.spec.client_id:
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
