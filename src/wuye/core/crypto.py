"""Field encryption at rest (Fernet: AES-128-CBC + HMAC-SHA256) and keyed lookups.

Keys come from ``settings.FIELD_ENCRYPTION_KEYS``; the first encrypts, all decrypt, so a key
can be rotated by prepending a new one.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def encrypt_text(plain: str) -> str:
    """Encrypt a string for storage."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plain.encode()).decode()


def decrypt_text(token: str) -> str:
    """Decrypt a stored string. Raises ValueError if no configured key opens it."""
    try:
        return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt field: wrong or missing WUYE_FIELD_KEY") from exc


def lookup_hash(value: str) -> str:
    """A keyed hash of ``value`` for equality lookups without storing it in clear."""
    key = hashlib.sha256(("lookup:" + settings.FIELD_ENCRYPTION_KEYS[0]).encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


class EncryptedTextField(models.TextField):
    """A text column stored encrypted; reads return the clear text."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt_text(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_text(value)
