"""The survey page in its own process for bench/page.py: `vloop serve` itself, with a higher per-address limit.

Usage: python bench/page_server_proc.py CONFIG PORT PER_IP → runs `vloop -c CONFIG serve --host 127.0.0.1
--port PORT` (Flask on waitress, logs at the configured level on stderr) until stdin closes. The whole
benchmark load comes from 127.0.0.1, so the per-address limit (60 requests a minute, with no config key) is
raised to PER_IP by wrapping `create_app`; everything else, the per-link limit included, is as configured.
"""

from __future__ import annotations

import os
import sys
import threading
from functools import partial

import connector.surveys.web as web
from connector.cli import main as vloop


def run() -> int:
    config, port, per_ip = sys.argv[1], sys.argv[2], int(sys.argv[3])
    web.create_app = partial(web.create_app, rate_limit_per_ip=per_ip)
    # Ends the process when the benchmark closes stdin (or dies), like the other *_proc.py helpers.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    return vloop(["-c", config, "serve", "--host", "127.0.0.1", "--port", port])


if __name__ == "__main__":
    sys.exit(run())
