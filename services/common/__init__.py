"""Code every service shares: configuration, errors and their HTTP mapping, auth claims, table keys,
observability setup, and (in later modules) the availability engine and the audit contract."""

__version__ = "0.1.0"
