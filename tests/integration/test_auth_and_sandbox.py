"""Authentication forms against the simulators, and `vloop sandbox` as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from connector.store import Store
from tests.integration.helpers import run_sync, site, world

ROOT = Path(__file__).resolve().parents[2]


def test_servicenow_oauth_client_credentials(sqlite_url, tmp_path, monkeypatch):
    with site("servicenow", world(30)) as sn:
        system = sn.system()
        system["auth"] = {"client_id": "vloop-sandbox", "client_secret": "${SN_CLIENT_SECRET}"}
        monkeypatch.setenv("SN_CLIENT_SECRET", "sandbox-client-secret")
        from connector.config import load
        from connector.loop.run import sync
        from tests.conftest import write_config

        loaded = load(write_config(tmp_path, sqlite_url, {"servicenow": system}),
                      env={"SN_CLIENT_SECRET": "sandbox-client-secret"})
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
        token_requests = sn.requests("/oauth_token.do")
        basic = [r for r in sn.server.faults.requests if r.path.startswith("/api/now")]
    assert result.status == "ok", result.systems[0].error
    assert result.systems[0].new_resolutions > 0
    assert token_requests == 1  # one token for the whole run, reused until it nears expiry
    assert basic and all(r.status == 200 for r in basic)


def test_wrong_oauth_secret_is_an_auth_error(sqlite_url, tmp_path):
    with site("servicenow", world(10)) as sn:
        system = sn.system()
        system["auth"] = {"client_id": "vloop-sandbox", "client_secret": "${SN_PASSWORD}"}  # not the secret
        result = run_sync(tmp_path, sqlite_url, {"servicenow": system})
    error = result.systems[0].error or ""
    assert result.status == "failed" and "token request refused" in error and "client_secret" in error


def test_jira_data_center_bearer_token(sqlite_url, tmp_path):
    with site("jira", world(40), mode="datacenter") as jira:
        system = jira.system()
        system["auth"] = {"token": "${JIRA_TOKEN}"}
        result = run_sync(tmp_path, sqlite_url, {"jira": system})
    assert result.status == "ok", result.systems[0].error


def test_vloop_sandbox_serves_until_stopped():
    process = subprocess.Popen([sys.executable, "-m", "connector", "sandbox", "servicenow", "--tickets", "25",
                                "--latency-ms", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=ROOT)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("servicenow sandbox on http://127.0.0.1:"), line
        url = line.split()[3]
        response = requests.get(f"{url}/api/now/v2/table/incident", params={"sysparm_limit": "3"},
                                auth=("vloop.integration", "sandbox-password"), timeout=10)
        assert response.status_code == 200 and len(response.json()["result"]) == 3
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_vloop_sandbox_jira_data_center_mode():
    process = subprocess.Popen([sys.executable, "-m", "connector", "sandbox", "jira", "--mode", "datacenter",
                                "--tickets", "20"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[3]
        info = requests.get(f"{url}/rest/api/2/serverInfo", auth=("vloop@example.com", "sandbox-token"), timeout=10)
        assert info.status_code == 200 and info.json()["deploymentType"] != "Cloud"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_https_with_a_custom_ca_bundle(sqlite_url, tmp_path):
    from connector.sandbox.server import SANDBOX_CA
    from connector.sandbox.servicenow import ServiceNowSimulator, make_servicenow_server
    from tests.conftest import servicenow_system

    sim = ServiceNowSimulator(world(30))
    with make_servicenow_server(sim, tls=True) as server:
        assert server.base_url.startswith("https://")
        trusted = servicenow_system(server.base_url, http={"ca_bundle": str(SANDBOX_CA)})
        ok = run_sync(tmp_path, sqlite_url, {"servicenow": trusted})
        untrusted = servicenow_system(server.base_url, http={"retry": {"max_attempts": 2, "max_wait": "10ms"}})
        refused = run_sync(tmp_path, f"sqlite:///{tmp_path / 'other.db'}", {"servicenow": untrusted})
    assert ok.status == "ok" and ok.systems[0].new_resolutions > 0
    error = refused.systems[0].error or ""
    assert refused.status == "failed" and "TLS verification failed" in error and "ca_bundle" in error
