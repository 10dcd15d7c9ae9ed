"""Secrets sealed with KMS: webhook subscriptions' signing secrets (decision 0029) and providers'
Calendly signing keys (decision 0030). Each is encrypted under the stage's key and bound by the
encryption context to what it belongs to (`context`: `webhookId` or `calendlyProviderId`), so a
sealed secret copied onto another subscription or provider does not open, and IAM grants each
function only the context it needs. Opened secrets are kept in the container for its life: a
delivery does not pay a KMS call."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

MOST_KEPT = 1024  # opened secrets kept per container (32 bytes each, plus the key)


class KmsSealer:
    def __init__(self, client: KMSClient, key_id: str, context: str = "webhookId") -> None:
        self.client, self.key_id, self.context = client, key_id, context
        self._opened: dict[tuple[bytes, str], bytes] = {}

    def seal(self, secret: bytes, bound_to: str) -> bytes:
        sealed = self.client.encrypt(KeyId=self.key_id, Plaintext=secret, EncryptionContext={self.context: bound_to})
        return sealed["CiphertextBlob"]

    def open(self, sealed: bytes, bound_to: str) -> bytes:
        known = self._opened.get((sealed, bound_to))
        if known is not None:
            return known
        # No KeyId: the ciphertext names the key it was sealed with, which may be a key the alias no
        # longer points to (a stack created again over the retained table).
        opened = self.client.decrypt(CiphertextBlob=sealed, EncryptionContext={self.context: bound_to})["Plaintext"]
        if len(self._opened) >= MOST_KEPT:
            self._opened.clear()
        self._opened[(sealed, bound_to)] = opened
        return opened
