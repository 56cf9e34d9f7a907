"""`vloop` commands. Thin: parse, call, print. Exit codes: 0 ok, 1 run failed, 2 bad config or usage."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from connector import __version__
from connector.config import Loaded, config_schema, find_config, load
from connector.errors import ConfigError, ConfigProblem, StateError, VloopError
from connector.redact import RedactingFilter, redact

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "werkzeug", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"at": datetime.fromtimestamp(record.created, UTC).isoformat(), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage()})


def _parse_since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date/time: {value!r}") from None
    return (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed).astimezone(UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vloop", description="Virtuous Loop: close the customer-experience loop.")
    parser.add_argument("-c", "--config", help="config file (default: $VLOOP_CONFIG, else ./vloop.yaml)")
    parser.add_argument("--version", action="version", version=f"vloop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check config and mappings; report every problem")
    p.add_argument("--check-connection", action="store_true",
                   help="also connect to each system and check the mapped fields exist")
    sub.add_parser("schema", help="print the JSON Schema of the config file")
    sub.add_parser("migrate", help="bring the state store schema up to date")

    p = sub.add_parser("sync", help="run the loop once (at this stage: pull resolved tickets)")
    p.add_argument("--dry-run", action="store_true", help="read from the systems, store nothing")
    p.add_argument("--system", help="only this system")
    p.add_argument("--since", type=_parse_since, help="pull resolutions from this ISO time instead of the cursor")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = sub.add_parser("serve", help="serve the survey page (waitress)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080)

    p = sub.add_parser("status", help="per system: cursor, tickets, resolutions, last run")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("sandbox", help="serve a ServiceNow or Jira simulator on loopback")
    p.add_argument("kind", choices=("servicenow", "jira"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--tickets", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--fail-rate", type=float, default=0.0, help="share of requests answered 503")
    p.add_argument("--rate-limit", type=float, default=0.0, help="requests per second before 429")
    p.add_argument("--mode", choices=("cloud", "datacenter"), default="cloud", help="Jira flavour")
    p.add_argument("--tls", action="store_true", help="serve HTTPS with the bundled sandbox certificate")

    p = sub.add_parser("setup", help="check the fields write-backs go to; on Jira, create them")
    p.add_argument("kind", choices=("servicenow", "jira"))
    p.add_argument("--system", help="only this system (default: every enabled system of that kind)")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true",
                        help="per field: ok, missing, not writable or wrong type, with the fix")
    action.add_argument("--create", action="store_true",
                        help="Jira: create the missing custom fields (Jira admin); ServiceNow: list the fields "
                             "to add by hand")

    p = sub.add_parser("demo", help="run the whole loop against the sandboxes and print what happened")
    p.add_argument("--tickets", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--state", help="state store URL (default: a new SQLite file in a temp folder)")
    return parser


def _load(args: argparse.Namespace) -> Loaded:
    return load(find_config(args.config, dict(os.environ)))


def _print_problems(problems: Sequence[ConfigProblem]) -> None:
    for problem in sorted(problems, key=lambda p: (p.file, p.line or 0)):
        print(redact(str(problem), patterns=False), file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if args.check_connection:
        from connector.checks import check_connections

        problems = check_connections(loaded)
        if problems:
            _print_problems(problems)
            return EXIT_CONFIG
    print(f"{loaded.path}: OK ({len(loaded.config.systems)} systems)")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2))
    return EXIT_OK


def _store(loaded: Loaded) -> Any:
    from connector.store import Store

    return Store.open(loaded.config.state)


def cmd_migrate(args: argparse.Namespace) -> int:
    loaded = _load(args)
    _store(loaded).close()
    print("state store is up to date")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    from connector.loop.run import sync
    from connector.report.summary import format_run

    loaded = _load(args)
    if args.system and args.system not in loaded.config.systems:
        print(f"{loaded.path}: systems: no system named {args.system!r}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(loaded.config.log.level, loaded.config.log.format)
    store = _store(loaded)
    try:
        result = sync(loaded, store, only=args.system, since=args.since, dry_run=args.dry_run)
    finally:
        store.close()
    print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False) if args.json else format_run(result))
    return EXIT_OK if result.status in ("ok", "locked") else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    from connector.report.summary import format_status, status_dict

    loaded = _load(args)
    store = _store(loaded)
    try:
        statuses = store.status(list(loaded.config.systems))
        last = store.last_run()
    finally:
        store.close()
    if args.json:
        print(json.dumps(status_dict(statuses, last), indent=2))
    else:
        print(format_status(statuses, last))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from connector.store.surveys import SurveyStore
    from connector.surveys.tokens import SurveyTokens
    from connector.surveys.web import create_app, serve

    loaded = _load(args)
    config = loaded.config
    if not config.surveys or config.public_url is None:
        print(f"{loaded.path}: surveys: no survey is configured; nothing to serve", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log.level, config.log.format)
    store = _store(loaded)
    max_age = max(s.expire_after for s in config.surveys.values())
    page = config.page
    app = create_app(SurveyStore(store.engine), SurveyTokens(config.secret_keys(), max_age),
                     dict(config.surveys), public_url=str(config.public_url),
                     secret_key=config.secret_keys()[0], rate_limit_per_ip=page.rate_limit_per_ip,
                     rate_limit_per_token=page.rate_limit_per_link,
                     optout_tokens=SurveyTokens(config.secret_keys(), max(page.optout_valid_for, max_age)))
    print(f"survey page on http://{args.host}:{args.port} (links: {config.public_url}); Ctrl-C stops it", flush=True)
    try:
        serve(app, args.host, args.port, page.trusted_proxies)
    finally:
        store.close()
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    from connector.sandbox.run import serve

    setup_logging()
    serve(args.kind, host=args.host, port=args.port, tickets=args.tickets, seed=args.seed,
          latency_ms=args.latency_ms, fail_rate=args.fail_rate, rate_limit=args.rate_limit, mode=args.mode,
          tls=args.tls)
    return EXIT_OK


def cmd_setup(args: argparse.Namespace) -> int:
    """Exit 0 when every write-back field is ready, 1 when one is not (or a system failed), 2 for usage."""
    from connector.loop.pull import make_source
    from connector.systems.setup import check_write_back, create_write_back_fields, servicenow_field_list

    loaded = _load(args)
    systems = loaded.config.systems
    if args.system:
        if args.system not in systems or systems[args.system].kind != args.kind:
            print(f"{loaded.path}: systems: no {args.kind} system named {args.system!r}", file=sys.stderr)
            return EXIT_CONFIG
        names = [args.system]
    else:
        names = [n for n, s in systems.items() if s.kind == args.kind and s.enabled]
        if not names:
            print(f"{loaded.path}: systems: no enabled {args.kind} system is configured", file=sys.stderr)
            return EXIT_CONFIG
    if args.kind == "servicenow" and args.create:
        print("vloop setup servicenow --create is not offered: ServiceNow schema changes belong in an update "
              "set. Add these fields (docs/servicenow.md, \"Write-back fields\"), then run vloop setup "
              "servicenow --check.", file=sys.stderr)
        for name in names:
            print("\n".join(servicenow_field_list(name, loaded.mappings[name])))
        return EXIT_CONFIG
    ready = True
    for name in names:
        source: Any = make_source(name, systems[name], loaded.mappings[name])
        try:
            result = create_write_back_fields(source) if args.create else check_write_back(source)
        except VloopError as exc:
            print(f"vloop: {redact(str(exc))}", file=sys.stderr)
            ready = False
            continue
        print("\n".join(result.lines()))
        ready = ready and result.ok
    return EXIT_OK if ready else EXIT_FAILED


def cmd_demo(args: argparse.Namespace) -> int:
    from connector.sandbox.demo import run_demo

    setup_logging("WARNING")
    return run_demo(tickets=args.tickets, seed=args.seed, state=args.state)


COMMANDS = {
    "validate": cmd_validate, "schema": cmd_schema, "migrate": cmd_migrate, "sync": cmd_sync,
    "status": cmd_status, "serve": cmd_serve, "sandbox": cmd_sandbox, "demo": cmd_demo, "setup": cmd_setup,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging("WARNING")  # `sync` raises this to the configured level once the config is read
    try:
        command: Callable[[argparse.Namespace], int] = COMMANDS[args.command]
        return command(args)
    except ConfigError as exc:
        _print_problems(exc.problems)
        return EXIT_CONFIG
    except StateError as exc:
        print(f"vloop: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except VloopError as exc:
        print(f"vloop: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("vloop: interrupted; the next run resumes from the stored cursor", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
