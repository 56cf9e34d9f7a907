"""A sync killed mid-pull (like `kill -9`) and run again ends in the same state as an uninterrupted run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.store import Store
from tests.conftest import ENV, write_config
from tests.integration.helpers import site, world

ROOT = Path(__file__).resolve().parents[2]


def vloop(config: Path, *args: str, failpoints: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "VLOOP_FAILPOINTS": failpoints, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "connector", "-c", str(config), *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def snapshot(url: str) -> dict[str, object]:
    store = Store.open(url)
    try:
        out: dict[str, object] = {}
        for system in ("servicenow", "jira"):
            out[system] = sorted(store.resolution_keys(system))  # collations differ by backend
            out[f"{system}-tickets"] = store.count("tickets", system)
        out["persons"] = store.count("persons")
        return out
    finally:
        store.close()


@pytest.mark.parametrize("failpoint", ["pull.page_stored=3", "pull.page_fetched=2", "pull.page_stored=9"])
def test_killed_pull_then_rerun_equals_an_uninterrupted_run(failpoint, tmp_path, state_url):
    with site("servicenow", world(700, seed=21)) as sn, site("jira", world(700, seed=22)) as jira:
        pull = {"page_size": 100, "commit_every": 100}
        systems = {"servicenow": sn.system(pull=pull), "jira": jira.system(pull=pull)}
        crashed_dir, clean_dir = tmp_path / "crashed", tmp_path / "clean"
        crashed_dir.mkdir()
        clean_dir.mkdir()
        clean_url = f"sqlite:///{clean_dir / 'clean.db'}"
        crashed_cfg = write_config(crashed_dir, state_url, systems)
        clean_cfg = write_config(clean_dir, clean_url, systems)

        killed = vloop(crashed_cfg, "sync", failpoints=failpoint)
        assert killed.returncode == 86, killed.stderr
        assert f"failpoint {failpoint.split('=')[0]}" in killed.stderr
        partial = snapshot(state_url)
        rerun = vloop(crashed_cfg, "sync")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        clean = vloop(clean_cfg, "sync")
        assert clean.returncode == 0, clean.stdout + clean.stderr
    assert partial != snapshot(clean_url)  # the crash really left work undone
    assert snapshot(state_url) == snapshot(clean_url)


def test_a_second_run_while_one_holds_the_lock_does_nothing(tmp_path, sqlite_url):
    with site("servicenow", world(50)) as sn:
        config = write_config(tmp_path, sqlite_url, {"servicenow": sn.system()})
        store = Store.open(sqlite_url)
        with store.lock() as held:
            assert held
            second = vloop(config, "sync")
        store.close()
        sent = sn.requests()
    assert second.returncode == 0
    assert "Another sync run is in progress" in second.stdout
    assert sent == 0
