"""Stands in for the two Cognito user pools: their signing keys and the tokens they issue (`user_pool.py`).

The customer pool holds `customers` and `providers`, the staff pool `admins` and `ops` (decision
0018), each with a persistent RSA key pair under the stack's state directory, so `make token` and a
running `make run` agree; `mint` issues ID (and, for tests, access) tokens with Cognito's claims and
the pool's issuer and client. A test holds each pool's groups equal to `cloudformation/auth.yaml`'s.
The gateway verifies them as the Cognito authorizer does, picking the pool by the token's `iss`
(`local/apigateway/authorizer.py`, decision 0003).

Deliberately not emulated:

- users, passwords, sign-up, sign-in flows, MFA and the hosted UI: a developer mints a token for any
  `sub` and groups (`POST /_local/token`, `make token`), from the pool that holds those groups; the
  staff pool's MFA is Cognito's to enforce at sign-in, before any token exists, so nothing after the
  token could show it;
- the JWKS endpoint and key rotation: the gateway holds each pool's one local key;
- refresh tokens and token revocation.
"""
