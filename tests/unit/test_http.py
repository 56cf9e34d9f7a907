"""The one retry policy: what is retried, how long it waits, what the operator is told."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from connector.config import HttpOptions, RetryOptions
from connector.errors import AuthError, RequestError, ResponseError, TransientError
from connector.http import Caller, Pacer, retry_after_seconds
from connector.redact import register_secret

URL = "https://acme.service-now.com/api/now/v2/table/incident"


def caller(sleeps: list[float], **retry) -> Caller:
    options = HttpOptions(retry=RetryOptions(**{"max_attempts": 5, **retry}))
    return Caller("snow", options, sleep=sleeps.append)


@responses.activate
def test_429_waits_exactly_what_retry_after_says_then_succeeds():
    for _ in range(3):
        responses.get(URL, status=429, headers={"Retry-After": "7"}, json={"error": {"message": "Rate limit"}})
    responses.get(URL, json={"result": []})
    sleeps: list[float] = []
    c = caller(sleeps)
    assert c.request("GET", URL).json() == {"result": []}
    assert sleeps == [7.0, 7.0, 7.0]
    assert c.requests_sent == 4


@responses.activate
def test_retry_after_as_http_date_is_honoured():
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    responses.get(URL, status=503, headers={"Retry-After": when})
    responses.get(URL, json={"result": []})
    sleeps: list[float] = []
    caller(sleeps).request("GET", URL)
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 31


@responses.activate
def test_without_retry_after_backoff_is_jittered_and_capped():
    for _ in range(4):
        responses.get(URL, status=502)
    responses.get(URL, json={"result": []})
    sleeps: list[float] = []
    caller(sleeps, max_wait="1s").request("GET", URL)
    assert len(sleeps) == 4 and all(0 <= s <= 1 for s in sleeps)


@pytest.mark.parametrize(("status", "error"), [(400, RequestError), (401, AuthError), (403, AuthError),
                                               (404, RequestError), (410, RequestError)])
@responses.activate
def test_client_errors_are_never_retried(status, error):
    responses.get(URL, status=status, json={"error": {"message": "Invalid table incidnt", "detail": None}})
    sleeps: list[float] = []
    c = caller(sleeps)
    with pytest.raises(error) as info:
        c.request("GET", URL, params={"sysparm_query": "stateIN6,7"})
    assert sleeps == [] and c.requests_sent == 1
    message = str(info.value)
    assert message.startswith("snow: GET https://acme.service-now.com/api/now/v2/table/incident")
    assert f"HTTP {status}" in message and "Invalid table incidnt" in message


@responses.activate
def test_500_is_retried_for_get_but_not_for_post():
    responses.get(URL, status=500)
    responses.get(URL, json={"result": []})
    sleeps: list[float] = []
    caller(sleeps).request("GET", URL)
    assert len(sleeps) == 1
    responses.post(URL, status=500)
    with pytest.raises(TransientError):
        caller(sleeps := []).request("POST", URL, json={})
    assert sleeps == []


@responses.activate
def test_attempts_run_out_with_a_transient_error_naming_the_request():
    responses.get(URL, status=503)
    sleeps: list[float] = []
    with pytest.raises(TransientError, match=r"snow: GET .*incident: HTTP 503.*next run resumes"):
        caller(sleeps, max_attempts=3).request("GET", URL)
    assert len(sleeps) == 2


@responses.activate
def test_connection_errors_and_timeouts_are_retried():
    responses.get(URL, body=requests.ConnectionError("reset by peer"))
    responses.get(URL, body=requests.ReadTimeout("slow"))
    responses.get(URL, json={"result": [1]})
    sleeps: list[float] = []
    assert caller(sleeps).request("GET", URL).json() == {"result": [1]}
    assert len(sleeps) == 2


@responses.activate
def test_malformed_json_is_a_response_error():
    responses.get(URL, body='{"result": [{"sys_id": "trunc')
    c = caller([])
    with pytest.raises(ResponseError, match="malformed JSON"):
        c.json(c.request("GET", URL))


@responses.activate
def test_secrets_never_reach_the_error_text():
    register_secret("hunter2-very-secret")
    responses.get(URL, status=400, json={"error": {"message": "bad password=hunter2-very-secret"}})
    with pytest.raises(RequestError) as info:
        caller([]).request("GET", URL + "?access_token=abc123def", auth=("u", "hunter2-very-secret"))
    assert "hunter2-very-secret" not in str(info.value) and "abc123def" not in str(info.value)


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("0", 0.0), ("1.5", 1.5), ("soon", None),
                                                  (None, None)])
def test_retry_after_parsing(header, expected):
    response = requests.Response()
    if header is not None:
        response.headers["Retry-After"] = header
    assert retry_after_seconds(response) == expected


def test_pacer_spaces_requests_to_the_configured_rate():
    clock = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    pacer = Pacer(max_concurrency=2, per_second=4, clock=lambda: clock[0], sleep=sleep)
    for _ in range(5):
        with pacer:
            pass
    assert slept == pytest.approx([0.25, 0.25, 0.25, 0.25])


def test_session_options_tls_ca_bundle_and_proxy():
    from connector.http import build_session

    session = build_session(HttpOptions(ca_bundle="/etc/corp/ca.pem", proxy="http://proxy.example.com:3128"))
    assert session.verify == "/etc/corp/ca.pem"
    assert session.proxies == {"https": "http://proxy.example.com:3128", "http": "http://proxy.example.com:3128"}
    assert build_session(HttpOptions()).verify is True
    assert build_session(HttpOptions(verify_tls=False, ca_bundle="/x.pem")).verify is False


@responses.activate
def test_timeouts_are_always_sent():
    seen = []

    def callback(request):
        seen.append(request.req_kwargs["timeout"])
        return (200, {}, '{"result": []}')

    responses.add_callback(responses.GET, URL, callback=callback)
    Caller("snow", HttpOptions(connect_timeout=3, read_timeout=45)).request("GET", URL)
    assert seen == [(3, 45)]


@responses.activate
def test_configured_ca_bundle_and_proxy_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy:8080")
    seen = []

    def callback(request):
        seen.append((request.req_kwargs["verify"], request.req_kwargs["proxies"].get("https")))
        return (200, {}, "{}")

    responses.add_callback(responses.GET, URL, callback=callback)
    options = HttpOptions(ca_bundle="/etc/corp/ca.pem", proxy="http://corp-proxy:3128")
    Caller("snow", options).request("GET", URL)
    assert seen == [("/etc/corp/ca.pem", "http://corp-proxy:3128")]
