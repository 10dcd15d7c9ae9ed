"""Stands in for the Cognito user pool: its signing key and the tokens it issues (`user_pool.py`).

A persistent RSA key pair under the stack's state directory plays the pool's key, so `make token` and
a running `make run` agree; `mint` issues ID (and, for tests, access) tokens with Cognito's claims
and the groups of `cloudformation/auth.yaml` (a test holds the two lists equal). The gateway
verifies them as the Cognito authorizer does (`local/apigateway/authorizer.py`, decision 0003).

Deliberately not emulated:

- users, passwords, sign-up, sign-in flows, MFA and the hosted UI: a developer mints a token for any
  `sub` and groups (`POST /_local/token`, `make token`);
- the JWKS endpoint and key rotation: the gateway holds the one local key;
- refresh tokens and token revocation.
"""
