"""EventBridge in the local stack: the rules that deliver what the buses accepted (rules.py)."""
