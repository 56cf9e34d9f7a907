from __future__ import annotations

import logging

import pytest

from connector.redact import RedactingFilter, redact, register_secret, sanitize_url


@pytest.mark.parametrize(("url", "expected"), [
    ("https://u:pw@acme.service-now.com/api?x=1", "https://acme.service-now.com/api?x=1"),
    ("https://h/p?access_token=abc&limit=5", "https://h/p?access_token=***&limit=5"),
    ("https://h/p?client_secret=s3&token=t", "https://h/p?client_secret=***&token=***"),
    ("https://h/api/now/v2/table/incident?sysparm_query=stateIN6,7^resolved_at>=2026-01-01",
     "https://h/api/now/v2/table/incident?sysparm_query=stateIN6,7^resolved_at>=2026-01-01"),
])
def test_sanitize_url(url, expected):
    assert sanitize_url(url) == expected


@pytest.mark.parametrize(("text", "leak"), [
    ("Authorization: Basic dmxvb3A6cGFzcw==", "dmxvb3A6cGFzcw"),
    ("headers {'Authorization': 'Bearer eyJhbGciOi.x.y'}", "eyJhbGciOi"),
    ("password=opensesame&user=a", "opensesame"),
    ('{"client_secret": "zzz-top"}', "zzz-top"),
])
def test_credential_shapes_are_masked(text, leak):
    assert leak not in redact(text)


def test_logging_filter_masks_registered_secrets(caplog):
    register_secret("my-token-4242")
    logger = logging.getLogger("vloop.test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="vloop.test"):
        logger.info("calling with %s", "my-token-4242")
    assert "my-token-4242" not in caplog.text and "***" in caplog.text
