"""The run ledger never keeps a run `running` after it stopped, whatever stopped it."""

from __future__ import annotations

import pytest

from connector.loop import run as run_module
from connector.store import Store
from tests.integration.helpers import run_sync, site, world


def test_a_step_that_blows_up_leaves_a_failed_run_with_the_reason(tmp_path, sqlite_url, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full while scoring (password=hunter2)")

    monkeypatch.setattr(run_module, "score_responses", broken)
    with site("servicenow", world(30)) as sn, pytest.raises(RuntimeError):
        run_sync(tmp_path, sqlite_url, {"servicenow": sn.system()})
    store = Store.open(sqlite_url)
    last = store.last_run()
    store.close()
    assert last["status"] == "failed" and last["finished_at"] is not None
    assert "disk full while scoring" in last["summary"]["error"] and "hunter2" not in last["summary"]["error"]
