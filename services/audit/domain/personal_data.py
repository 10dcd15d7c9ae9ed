"""Customers' free text in the trail: sealed, never in clear (issue 18, decision 0020).

A booking's `notes` and `cancelReason` are what a customer wrote, and its `declineReason` what the
provider wrote about them. The trail keeps every change for
years in an object-locked archive that nobody can edit, so the text itself must never enter it:
each value is replaced by an HMAC-SHA256 keyed with a secret of that customer's own
(`hmac-sha256:<hex>`). While the key exists, the trail can prove what the text was (whoever holds the
text computes the same seal); once the customer's personal data is erased, the key is deleted and
every seal made with it is a random-looking string that no dictionary can reverse, while the hash
chain over the sealed events still verifies. An event made before an erasure and recorded after it
(the stream delivers different items' records in any order) gets `ERASED` instead of a seal.

Pure: the key is given; the audit table keeps it (adapters/dynamodb_trail.py).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from services.common.audit import AuditEvent, Change

# The booking fields a customer writes in their own words, and their WhatsApp number (decision 0031).
FREE_TEXT = frozenset({"notes", "cancelReason", "declineReason", "whatsapp"})
SEAL_PREFIX = "hmac-sha256:"
ERASED = "ERASED"  # in place of a value whose customer's data was erased before it was recorded


def has_free_text(event: AuditEvent) -> bool:
    return any(
        isinstance(value, str)
        for name, change in event.changes.items()
        if name in FREE_TEXT
        for value in (change.before, change.after)
    )


def seal(value: str, key: bytes) -> str:
    return SEAL_PREFIX + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def sealed(event: AuditEvent, key: bytes | None) -> AuditEvent:
    """The event with every free-text value sealed with `key`; with no key (erased), marked `ERASED`."""

    def hide(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return seal(value, key) if key is not None else ERASED

    changes = {
        name: Change(before=hide(change.before), after=hide(change.after)) if name in FREE_TEXT else change
        for name, change in event.changes.items()
    }
    return event.model_copy(update={"changes": changes})
