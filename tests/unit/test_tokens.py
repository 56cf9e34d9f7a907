from __future__ import annotations

import base64
import time
from datetime import timedelta

import pytest

from connector.surveys.tokens import SurveyTokens

OLD, NEW = "o" * 32 + "-old-key", "n" * 32 + "-new-key"


def test_round_trip_carries_only_the_invitation_id():
    tokens = SurveyTokens([NEW], timedelta(days=14))
    token = tokens.sign(4711)
    assert tokens.check(token).status == "ok" and tokens.check(token).invitation_id == 4711
    payload = token.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert decoded == b'{"i":4711}'  # no email, no name, no ticket text


def test_rotation_old_links_keep_working_new_links_use_the_new_key():
    old_link = SurveyTokens([OLD], timedelta(days=14)).sign(1)
    rotated = SurveyTokens([NEW, OLD], timedelta(days=14))
    assert rotated.check(old_link).invitation_id == 1
    assert SurveyTokens([NEW], timedelta(days=14)).check(rotated.sign(2)).invitation_id == 2
    assert SurveyTokens([NEW], timedelta(days=14)).check(old_link).status == "invalid"  # old key retired


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: "x" + t,
    lambda t: "",
    lambda t: "not-a-token",
])
def test_tampered_tokens_are_invalid(mangle):
    tokens = SurveyTokens([NEW], timedelta(days=14))
    assert tokens.check(mangle(tokens.sign(9))).status == "invalid"


def test_expired_tokens_are_refused(monkeypatch):
    tokens = SurveyTokens([NEW], timedelta(seconds=10))
    token = tokens.sign(5)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 11)
    assert tokens.check(token).status == "expired"


def test_short_keys_are_refused():
    with pytest.raises(ValueError, match="at least 32 characters"):
        SurveyTokens(["short"], timedelta(days=1))
