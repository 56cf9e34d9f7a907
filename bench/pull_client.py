"""One benchmark pull in its own process, so peak RSS is the connector's alone.

Usage: python bench/pull_client.py servicenow|jira URL STATE_URL → prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

from connector.config import load
from connector.loop.run import sync
from connector.store import Store


def main() -> None:
    kind, url, state = sys.argv[1], sys.argv[2], sys.argv[3]
    if kind == "servicenow":
        system = {"kind": "servicenow", "url": url, "mapping": "servicenow-incident",
                  "auth": {"user": "vloop.integration", "password": "${SN_PASSWORD}"}}
    else:
        system = {"kind": "jira", "url": url, "mapping": "jira-service-management", "jql": "project = ITSD",
                  "auth": {"email": "vloop@example.com", "token": "${JIRA_TOKEN}"}}
    system["pull"] = {"initial_lookback": "60d"}
    folder = Path(tempfile.mkdtemp(prefix="vloop-bench-"))
    config = folder / "vloop.yaml"
    config.write_text(yaml.safe_dump({"state": state, "systems": {kind: system}}))
    loaded = load(config, env={"SN_PASSWORD": "sandbox-password", "JIRA_TOKEN": "sandbox-token"})
    store = Store.open(loaded.config.state)
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    result = sync(loaded, store)
    wall = time.perf_counter() - started
    stored = store.count("resolutions", kind)
    store.close()
    s = result.systems[0]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"status": s.status, "error": s.error, "requests": s.requests, "pages": s.pages,
                      "tickets": s.tickets, "stored": stored, "wall_s": round(wall, 2),
                      "cpu_s": round(usage.ru_utime + usage.ru_stime - cpu_before, 2),
                      "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
