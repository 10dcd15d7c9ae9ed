"""Webhook secrets sealed with KMS (decision 0029): encrypted under the stage's key, bound to their
subscription by the encryption context, so a sealed secret copied onto another subscription does not
open. Opened secrets are kept in the container for its life: a delivery does not pay a KMS call."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

MOST_KEPT = 1024  # opened secrets kept per container (32 bytes each, plus the key)


class KmsSealer:
    def __init__(self, client: KMSClient, key_id: str) -> None:
        self.client, self.key_id = client, key_id
        self._opened: dict[tuple[bytes, str], bytes] = {}

    def seal(self, secret: bytes, webhook_id: str) -> bytes:
        sealed = self.client.encrypt(KeyId=self.key_id, Plaintext=secret, EncryptionContext={"webhookId": webhook_id})
        return sealed["CiphertextBlob"]

    def open(self, sealed: bytes, webhook_id: str) -> bytes:
        known = self._opened.get((sealed, webhook_id))
        if known is not None:
            return known
        # No KeyId: the ciphertext names the key it was sealed with, which may be a key the alias no
        # longer points to (a stack created again over the retained table).
        opened = self.client.decrypt(CiphertextBlob=sealed, EncryptionContext={"webhookId": webhook_id})["Plaintext"]
        if len(self._opened) >= MOST_KEPT:
            self._opened.clear()
        self._opened[(sealed, webhook_id)] = opened
        return opened
