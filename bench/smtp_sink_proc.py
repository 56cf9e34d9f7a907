"""A mail sink in its own process for bench/surveys.py: prints "PORT <port>", counts messages until
stdin closes, then prints the count (so the sink does not share the connector's interpreter)."""

from __future__ import annotations

import sys

from connector.sandbox.mailsink import MailSink

if __name__ == "__main__":
    with MailSink() as sink:
        print(f"PORT {sink.port}", flush=True)
        sys.stdin.read()
        print(len(sink.messages), flush=True)
