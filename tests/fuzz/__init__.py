"""schemathesis against the local stack: what `make fuzz` runs at volume (`python -m tests.fuzz`) and
tests/integration/test_openapi_fuzz.py runs briefly in `make test`.

`hooks.py` holds what schemathesis cannot read from the document (the rules between parameters that
the document states in words) and `schemathesis.toml` which statuses each check expects.
"""
