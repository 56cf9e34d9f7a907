"""Signed survey links: which invitation a link is for, and whether it is still valid.

A token carries only the invitation id (no personal data), signed with HMAC by itsdangerous under a
purpose salt and timestamped for expiry. Keys rotate: the first key signs, every listed key verifies,
so a new key can be introduced before the old one is retired. Single use is not the token's job: the
state store allows one response per invitation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "vloop-survey-link-v1"
MIN_KEY_LENGTH = 32


@dataclass(frozen=True)
class TokenCheck:
    status: Literal["ok", "expired", "invalid"]
    invitation_id: int | None = None


class SurveyTokens:
    """Signs and verifies survey links with one or more secret keys (newest first)."""

    def __init__(self, keys: Sequence[str], max_age: timedelta):
        if not keys or any(len(k) < MIN_KEY_LENGTH for k in keys):
            raise ValueError(f"secret_key: each key needs at least {MIN_KEY_LENGTH} characters")
        # itsdangerous signs with the last key of the list and verifies with all of them.
        self._serializer = URLSafeTimedSerializer(list(reversed(keys)), salt=SALT)
        self.max_age = max_age

    def sign(self, invitation_id: int) -> str:
        return str(self._serializer.dumps({"i": invitation_id}))

    def check(self, token: str) -> TokenCheck:
        """Expired and tampered tokens are told apart for logging only; the page treats them alike."""
        try:
            payload = self._serializer.loads(token, max_age=int(self.max_age.total_seconds()))
        except SignatureExpired:
            return TokenCheck("expired")
        except BadSignature:
            return TokenCheck("invalid")
        invitation = payload.get("i") if isinstance(payload, dict) else None
        if not isinstance(invitation, int) or isinstance(invitation, bool):
            return TokenCheck("invalid")
        return TokenCheck("ok", invitation)
