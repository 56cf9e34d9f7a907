"""Benchmark: the survey page under load from a separate process on loopback (issue 3).

The page (`vloop serve`: Flask on waitress, 8 threads) runs in its own process (bench/page_server_proc.py)
over a fresh state store holding N `sent` invitations. This process is the load: 50 clients, each taking
the next link, GET /s/<token>?score=S (the form, as a browser opens it from the mail) and POST the form.
For a share of the links the client sends the same form 3 times at once on 3 connections (a double
click, two tabs). Reports responses per second, p50/p95/p99 latency of GET and POST, and proves from the
store that every distinct submission is stored exactly once. Replaces its section of bench/RESULTS.md.

    .venv/bin/python bench/page.py [--n 2000] [--clients 50] [--duplicates 0.1] [--stores sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import requests
import yaml
from results import write_section  # bench/ is on sys.path when a script runs
from sqlalchemy import create_engine, func, insert, select, text

from connector.store import Store
from connector.store.db import normalise_url
from connector.store.schema import clicks, invitations, responses, tickets
from connector.surveys.definitions import scale
from connector.surveys.tokens import SurveyTokens

HERE = Path(__file__).resolve().parent
MARKER = "## Survey page under load (issue 3)"
KEY = "bench-page-" + "k" * 40
SURVEY, KIND = "resolved", "csat"
PER_IP = 1_000_000  # requests a minute per address in the page's process; the default is 60
PG_URL = os.environ.get("VLOOP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
APPLICATION = "vloop-bench-page"  # PostgreSQL application_name of the page's connections
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@dataclass(frozen=True)
class Job:
    """One link and what its respondent answers."""

    index: int
    invitation_id: int
    token: str
    score: int
    copies: int  # 1, or the number of simultaneous POSTs of the same form

    @property
    def comment(self) -> str:
        return f"bench answer {self.index}"


@dataclass(frozen=True)
class Sample:
    method: str
    outcome: str  # form | thanks | already | <status> | error
    seconds: float
    index: int


@dataclass
class Measured:
    samples: list[Sample]
    wall_s: float
    server_cpu_s: float
    loop_thread_cpu_s: float  # waitress's main thread: accepts, reads and writes every connection
    client_cpu_s: float
    machine_cpu_s: float  # every process on the machine, whatever else is running
    db_cpu_s: float | None = None  # PostgreSQL backends serving the page (a lower bound, sampled)
    db_backends: int | None = None
    page_errors: int = 0  # ERROR lines in the page's log
    raced: int = 0  # duplicate POSTs that passed the `responded` check and lost at the unique constraint


@dataclass
class Proof:
    submitted: int
    stored: int
    multiple: int
    mismatched: int
    thanks_not_one: int
    duplicate_groups: int
    duplicate_groups_ok: int
    clicks: int
    gets: int
    unexpected: int  # answers other than the form, "Thank you!" and "Already answered" (errors, 429, 500)
    page_errors: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- the state store ---------------------------------------------------------------------------------


@contextmanager
def state_url(kind: str, folder: Path) -> Iterator[str]:
    """A fresh store: a SQLite file, or a throwaway PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'state.db'}"
        return
    admin = create_engine(normalise_url(PG_URL))
    schema = f"bench_page_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}&application_name={APPLICATION}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_reachable() -> bool:
    try:
        engine = create_engine(normalise_url(PG_URL), connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def seed(url: str, n: int) -> list[int]:
    """N tickets with one `sent` invitation each, through the real schema (Store.open runs the migrations)."""
    store = Store.open(url)
    now = datetime.now(UTC)
    ticket_rows = [{"system": "snow", "id": f"sys{i}", "number": f"INC{i:07d}", "title": f"Laptop {i} will not boot",
                    "state": "resolved", "status": "Resolved", "resolved_at": now, "raw": {}, "pulled_at": now}
                   for i in range(n)]
    invitation_rows = [{"survey": SURVEY, "system": "snow", "ticket_id": f"sys{i}", "resolved_at": now,
                        "person_key": f"p{i}@example.com", "email": f"p{i}@example.com", "language": "en",
                        "channel": "email", "state": "sent", "sent_at": now, "expires_at": now + timedelta(days=14),
                        "created_at": now, "updated_at": now} for i in range(n)]
    with store.engine.begin() as conn:
        conn.execute(insert(tickets), ticket_rows)
        conn.execute(insert(invitations), invitation_rows)
        ids = dict(conn.execute(select(invitations.c.ticket_id, invitations.c.id)).all())
    store.close()
    return [ids[f"sys{i}"] for i in range(n)]


def make_jobs(ids: list[int], duplicates: float, copies: int) -> list[Job]:
    tokens = SurveyTokens([KEY], max_age=timedelta(days=14))
    values = list(scale(KIND).values())
    every = round(1 / duplicates) if duplicates > 0 else 0
    return [Job(i, invitation_id, tokens.sign(invitation_id), values[i % len(values)],
                copies if every and i % every == 0 else 1)
            for i, invitation_id in enumerate(ids)]


# --- the page's process ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, url: str, port: int) -> Path:
    path = folder / "vloop.yaml"
    path.write_text(yaml.safe_dump({
        "state": url, "secret_key": KEY, "public_url": f"http://127.0.0.1:{port}", "systems": {},
        "channels": {"email": {"from": "IT Service Desk <desk@example.com>"}},
        "surveys": {SURVEY: {"kind": KIND}},
    }))
    return path


@contextmanager
def page_server(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, str(HERE / "page_server_proc.py"), str(config), str(port),
                                 str(PER_IP)], stdin=subprocess.PIPE, stdout=err, stderr=err, text=True)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc)
            yield proc
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)


def wait_healthy(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with suppress(requests.RequestException):
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the survey page did not come up (exit {proc.poll()})")


# --- the load ----------------------------------------------------------------------------------------


def timed(method: str, index: int, call: Callable[[], requests.Response]) -> tuple[Sample, str]:
    started = time.perf_counter()
    try:
        got = call()
    except requests.RequestException as exc:
        return Sample(method, "error", time.perf_counter() - started, index), type(exc).__name__
    seconds = time.perf_counter() - started
    return Sample(method, classify(method, got), seconds, index), got.text


def classify(method: str, got: requests.Response) -> str:
    if got.status_code != 200:
        return str(got.status_code)
    if method == "GET":
        return "form" if CSRF.search(got.text) else "no form"
    return "thanks" if "Thank you!" in got.text else "already" if "Already answered" in got.text else "other"


class Load:
    """50 clients (threads), each with its own keep-alive connection, working through the jobs."""

    def __init__(self, base: str, clients: int):
        self.base = base
        self.clients = clients
        self._local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session  # type: ignore[no-any-return]

    def run(self, jobs: list[Job]) -> list[Sample]:
        with ThreadPoolExecutor(self.clients) as pool:
            return [s for samples in pool.map(self.respond, jobs) for s in samples]

    def respond(self, job: Job) -> list[Sample]:
        url = f"{self.base}/s/{job.token}"
        opened, page = timed("GET", job.index, lambda: self.session().get(url, params={"score": job.score},
                                                                           timeout=30))
        found = CSRF.search(page)
        if not found:
            return [opened]
        tone = scale(KIND).tone(job.score)
        form = {"csrf": found.group(1), "score": str(job.score), "reason": f"{tone}-0", "comment": job.comment}
        if job.copies == 1:
            return [opened, timed("POST", job.index, lambda: self.session().post(url, data=form, timeout=30))[0]]
        return [opened, *self.at_once(job, url, form)]

    def at_once(self, job: Job, url: str, form: dict[str, str]) -> list[Sample]:
        """The same form POSTed `copies` times at the same instant, each on a new connection of its own."""
        barrier = threading.Barrier(job.copies)
        out: list[Sample] = []

        def post() -> None:
            barrier.wait()
            out.append(timed("POST", job.index, lambda: requests.post(url, data=form, timeout=30))[0])

        threads = [threading.Thread(target=post) for _ in range(job.copies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out


def loop_cpu(proc: psutil.Process) -> float:
    """CPU of the page process's main thread, which runs waitress's socket loop (`serve` blocks in it)."""
    return float(next(t.user_time + t.system_time for t in proc.threads() if t.id == proc.pid))


def cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def machine_cpu() -> float:
    """CPU seconds the whole machine was busy (guest time is already inside user time)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
                 + getattr(t, "steal", 0.0))


class Backends:
    """CPU of the PostgreSQL backends serving the page, sampled every 0.2 s by application_name.

    A backend that exits between two samples loses at most 0.2 s of its CPU: the sum is a lower bound.
    """

    def __init__(self, url: str | None):
        self._engine = create_engine(normalise_url(url.split("?")[0])) if url else None
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Backends:
        if self._engine is not None:
            self._sample(initial=True)
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._engine is not None:
            self._stop.set()
            self._thread.join()
            self._sample(initial=False)
            self._engine.dispose()

    def cpu_s(self) -> float | None:
        return sum(self._last[p] - self._first.get(p, 0.0) for p in self._last) if self._engine else None

    def count(self) -> int | None:
        return len(self._last) if self._engine else None

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample(initial=False)

    def _sample(self, *, initial: bool) -> None:
        assert self._engine is not None
        with self._engine.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                                {"name": APPLICATION}).scalars().all()
        for pid in pids:
            with suppress(psutil.Error):
                self._last[pid] = cpu(psutil.Process(pid))
                if initial:
                    self._first[pid] = self._last[pid]


def measure(server: subprocess.Popen[str], base: str, jobs: list[Job], clients: int, db: str | None) -> Measured:
    proc, me = psutil.Process(server.pid), psutil.Process()
    with Backends(db) as backends:
        cpu0, loop0, mine0, machine0 = cpu(proc), loop_cpu(proc), cpu(me), machine_cpu()
        started = time.perf_counter()
        samples = Load(base, clients).run(jobs)
        wall = time.perf_counter() - started
        cpu1, loop1, mine1, machine1 = cpu(proc), loop_cpu(proc), cpu(me), machine_cpu()
    return Measured(samples, wall, cpu1 - cpu0, loop1 - loop0, mine1 - mine0, machine1 - machine0,
                    backends.cpu_s(), backends.count())


def warm_up(base: str, token: str) -> None:
    """Open one extra invitation (never answered) and a bad link, so the templates are compiled before timing."""
    for path in (f"/s/{token}?score=3", "/s/not-a-link"):
        requests.get(base + path, timeout=30)


# --- the proof ---------------------------------------------------------------------------------------


def prove(url: str, jobs: list[Job], measured: Measured) -> Proof:
    store = Store.open(url, migrate=False)
    with store.engine.connect() as conn:
        stored = {r.invitation_id: (r.score, r.comment)
                  for r in conn.execute(select(responses.c.invitation_id, responses.c.score, responses.c.comment))}
        rows = conn.execute(select(func.count()).select_from(responses)).scalar_one()
        multiple = conn.execute(select(func.count()).select_from(
            select(responses.c.invitation_id).group_by(responses.c.invitation_id)
            .having(func.count() > 1).subquery())).scalar_one()
        click_count = conn.execute(select(func.count()).select_from(clicks)).scalar_one()
    store.close()
    samples = measured.samples
    posted = {s.index for s in samples if s.method == "POST"}
    thanks = Counter(s.index for s in samples if s.outcome == "thanks")
    already = Counter(s.index for s in samples if s.outcome == "already")
    submitted = [j for j in jobs if j.index in posted]
    mismatched = sum(stored.get(j.invitation_id) != (j.score, j.comment) for j in submitted)
    groups = [j for j in submitted if j.copies > 1]
    groups_ok = sum(stored.get(j.invitation_id) == (j.score, j.comment) and thanks[j.index] == 1
                    and already[j.index] == j.copies - 1 for j in groups)
    proof = Proof(len(submitted), rows, multiple, mismatched, sum(thanks[j.index] != 1 for j in submitted),
                  len(groups), groups_ok, click_count, sum(s.method == "GET" for s in samples) + 1,
                  sum(s.outcome not in ("form", "thanks", "already") for s in samples), measured.page_errors)
    proof.problems = problems(proof, len(jobs))
    return proof


def problems(p: Proof, tokens: int) -> list[str]:
    checks = {
        f"{tokens - p.submitted} tokens were never submitted": p.submitted == tokens,
        f"{p.stored} responses stored for {p.submitted} distinct submissions": p.stored == p.submitted,
        f"{p.multiple} invitations have more than one response": p.multiple == 0,
        f"{p.mismatched} stored responses differ from what was submitted": p.mismatched == 0,
        f"{p.thanks_not_one} tokens did not get exactly one 'Thank you'": p.thanks_not_one == 0,
        f"{p.duplicate_groups - p.duplicate_groups_ok} duplicate groups not answered once":
            p.duplicate_groups_ok == p.duplicate_groups,
        f"{p.clicks} clicks recorded for {p.gets} GETs": p.clicks == p.gets,
        f"{p.unexpected} answers were errors": p.unexpected == 0,
        f"{p.page_errors} errors in the page's log": p.page_errors == 0,
    }
    return [message for message, ok in checks.items() if not ok]


# --- one run, and the report -------------------------------------------------------------------------


def run_store(kind: str, args: argparse.Namespace) -> tuple[Measured, Proof]:
    folder = Path(tempfile.mkdtemp(prefix=f"vloop-bench-page-{kind}-"))
    with state_url(kind, folder) as url:
        ids = seed(url, args.n + 1)
        jobs = make_jobs(ids[:-1], args.duplicates, args.copies)
        warm_token = make_jobs(ids[-1:], 0, 1)[0].token
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with page_server(write_config(folder, url, port), port, folder / "page.log") as server:
            warm_up(base, warm_token)
            measured = measure(server, base, jobs, args.clients, url if kind == "postgresql" else None)
        log = (folder / "page.log").read_text()
        measured.page_errors = log.count(" ERROR ")
        measured.raced = log.count("survey answer already recorded")
        return measured, prove(url, jobs, measured)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank, in milliseconds."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q) - 1)] * 1000 if ordered else 0.0


def latencies(samples: list[Sample], method: str) -> str:
    values = [s.seconds for s in samples if s.method == method]
    return " / ".join(f"{percentile(values, q):.0f}" for q in (0.50, 0.95, 0.99))


def outcomes(samples: list[Sample], method: str) -> str:
    counts = Counter(s.outcome for s in samples if s.method == method)
    return ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def load_row(kind: str, n: int, m: Measured) -> str:
    posts = sum(s.method == "POST" for s in m.samples)
    return (f"| {kind} | {n:,} | {len(m.samples) - posts:,} | {posts:,} | {m.wall_s:.1f} | {posts / m.wall_s:,.0f} | "
            f"{len(m.samples) / m.wall_s:,.0f} | {latencies(m.samples, 'GET')} | {latencies(m.samples, 'POST')} | "
            f"{outcomes(m.samples, 'GET')} | {outcomes(m.samples, 'POST')} |")


def cores(seconds: float | None, wall: float) -> str:
    return "-" if seconds is None else f"{seconds:.1f} ({seconds / wall:.2f})"


def cpu_row(kind: str, m: Measured) -> str:
    db = m.db_cpu_s or 0.0
    other = max(0.0, m.machine_cpu_s - m.server_cpu_s - m.client_cpu_s - db)
    per_request = m.server_cpu_s / len(m.samples) * 1000
    backends = f" / {m.db_backends}" if m.db_backends is not None else ""
    return (f"| {kind} | {cores(m.server_cpu_s, m.wall_s)} | {per_request:.1f} | "
            f"{cores(m.loop_thread_cpu_s, m.wall_s)} | {cores(m.db_cpu_s, m.wall_s)}{backends} | "
            f"{cores(m.client_cpu_s, m.wall_s)} | {cores(other, m.wall_s)} | {cores(m.machine_cpu_s, m.wall_s)} |")


def proof_row(kind: str, p: Proof, raced: int) -> str:
    return (f"| {kind} | {p.submitted:,} | {p.stored:,} | {p.multiple} | {p.mismatched} | {p.thanks_not_one} | "
            f"{p.duplicate_groups_ok:,} of {p.duplicate_groups:,} | {raced:,} | {p.clicks:,} / {p.gets:,} | "
            f"{p.unexpected} / {p.page_errors} | {'yes' if p.ok else 'NO: ' + '; '.join(p.problems)} |")


def setup(args: argparse.Namespace, command: str) -> list[str]:
    every = round(1 / args.duplicates) if args.duplicates else 0
    return [
        f"Command: `{command}`  ",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} ({platform.python_version()}), "
        f"{os.cpu_count()} cores, shared by all processes below. The survey page in its own process "
        "(bench/page_server_proc.py runs `vloop serve`: Flask on waitress with 8 threads, logs at INFO to a file) "
        f"over a fresh state store holding {args.n:,} `sent` csat invitations, inserted through the "
        "migrated schema. The load from this process on loopback: "
        f"{args.clients} clients (threads with `requests`, one keep-alive connection each), each taking the next "
        "link: GET `/s/<token>?score=S` (the form; records a click), then POST of the form (score, one reason, a "
        f"comment naming the link). For every {every}th link the client POSTs the same form {args.copies} times at "
        f"the same instant, on {args.copies} connections of its own. One extra invitation is opened (never "
        "answered) before timing, so the templates are compiled. All requests come from 127.0.0.1, so the page's "
        f"process raises the per-address limit to {PER_IP:,} a minute by wrapping `create_app` (`vloop serve` "
        "keeps 60 a minute and has no key for it); the per-link limit keeps its default of 10 a minute.",
    ]


def render(results: dict[str, tuple[Measured, Proof]], args: argparse.Namespace, command: str) -> str:
    lines = [
        MARKER, "", *setup(args, command), "",
        "| store | links | GETs | POSTs | wall s | POST/s | requests/s | GET ms p50 / p95 / p99 "
        "| POST ms p50 / p95 / p99 | GET answers | POST answers |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(load_row(kind, args.n, m) for kind, (m, _) in results.items()), "",
        "Latency is taken in the client around each request, body read included. `form`: the form with its CSRF "
        "token; `thanks` / `already`: the 200 page saying \"Thank you!\" / \"Already answered\".", "",
        "Exactly once, from the store after the load:", "",
        "| store | links submitted | responses stored | invitations with > 1 response | stored ≠ submitted "
        "(score, comment) | links without exactly one \"Thank you!\" | duplicate groups: one stored, the others "
        "\"Already answered\" | duplicates refused by the unique constraint | clicks / GETs (+1 warm-up) "
        "| error answers / page log errors | exactly once |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(proof_row(kind, p, m.raced) for kind, (m, p) in results.items()), "",
        "A duplicate is refused either before the insert (the page saw the link answered) or by the store's "
        "unique constraint when it raced the first POST past that check (counted from the page's log): the "
        "second kind shows the concurrent path was exercised.", "",
        "Where the CPU went during the load, CPU seconds (cores = CPU s / wall s):", "",
        "| store | page process | page CPU ms per request | of which waitress's socket loop thread "
        "| PostgreSQL backends of the page / backends seen | load generator | anything else | whole machine |",
        "|---|---|---|---|---|---|---|---|",
        *(cpu_row(kind, m) for kind, (m, _) in results.items()), "",
        "PostgreSQL backends are found by their application_name and sampled every 0.2 s: a lower bound. "
        "\"Anything else\": PostgreSQL's own processes, the kernel, and whatever else ran on the machine.", "",
        "### Reading the numbers", "", *reading(results, args.clients), *PROFILE, "",
    ]
    return "\n".join(lines)


def reading(results: dict[str, tuple[Measured, Proof]], clients: int) -> list[str]:
    notes = []
    for kind, (m, _) in results.items():
        per_request = m.server_cpu_s / len(m.samples)
        rps = len(m.samples) / m.wall_s
        median = percentile([s.seconds for s in m.samples], 0.5)
        notes.append(
            f"- **{kind}**: {rps:,.0f} requests/s at {per_request * 1000:.1f} ms of the page's CPU each; the "
            f"page's process ran at {m.server_cpu_s / m.wall_s:.2f} cores and the whole machine at "
            f"{m.machine_cpu_s / m.wall_s:.2f} of {os.cpu_count()}. " + bound(kind, m, per_request)
            + f" Latency is queueing: {clients} clients / {rps:,.0f} requests/s = {clients / rps * 1000:.0f} ms "
            f"(Little's law) against a measured median of {median:.0f} ms.")
    return notes


def bound(kind: str, m: Measured, per_request: float) -> str:
    if kind == "sqlite":
        ceiling = 1 / per_request
        return ("The page is one Python interpreter: its 8 waitress threads share one core (the GIL), so at "
                f"{per_request * 1000:.1f} ms a request its ceiling is {ceiling:,.0f} requests/s however many cores "
                f"there are, and it served {len(m.samples) / m.wall_s / ceiling:.0%} of that. SQLite allows one "
                "writer at a time, but a write here is one short transaction (a click or a response).")
    return ("The page's process stays below one core: each request also waits for PostgreSQL round trips (a "
            "`pool_pre_ping` before every checkout, then the queries), and the backends, the load generator and "
            f"the page share two cores. {m.db_backends} backends served the page's 8 threads: SQLAlchemy's "
            "default pool keeps 5 connections, so connections are closed and reopened all through the load, "
            "each a new backend. Tried by hand with a pool of 10: 8 backends, but no throughput difference "
            "beyond the run-to-run noise of this shared machine.")


PROFILE = [
    "- **Where a request's CPU goes** (cProfile of the app through Flask's test client, SQLite, 1,000 GET + "
    "POST pairs; py-spy is not installed): the link lookup (`invitation_view`, a three-table join run on every "
    "GET and POST) about a quarter, half of it building the SQLAlchemy statement anew on each call; the "
    "templates about 20%; the two writes (the click on GET, the response on POST) about 16%; language "
    "negotiation about 10%; the signature check and logging about 5% each; the rest Flask and Werkzeug. "
    "On SQLite nothing in it waits: the page is CPU-bound.",
    "- **Not measured here**: the per-address limit. `vloop serve` allows 60 requests a minute per address and "
    "waitress sees the peer address only, so behind a reverse proxy (or one company's NAT) all respondents share "
    "those 60 a minute, about 30 answers (GET + POST) a minute for the whole page.",
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2_000, help="links (invitations) submitted")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duplicates", type=float, default=0.1, help="share of links submitted several times")
    parser.add_argument("--copies", type=int, default=3, help="simultaneous POSTs of a duplicated form")
    parser.add_argument("--stores", default="sqlite,postgresql", help="postgresql is skipped when unreachable")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    results: dict[str, tuple[Measured, Proof]] = {}
    for kind in args.stores.split(","):
        if kind == "postgresql" and not postgres_reachable():
            print(f"postgresql: not reachable at {PG_URL}, skipped", file=sys.stderr)
            continue
        results[kind] = run_store(kind, args)
        measured, proof = results[kind]
        print(load_row(kind, args.n, measured), proof_row(kind, proof, measured.raced), cpu_row(kind, measured),
              sep="\n", flush=True)
    command = " ".join([".venv/bin/python bench/page.py", *sys.argv[1:]])
    write_section(Path(args.out), MARKER, render(results, args, command))
    return 0 if results and all(p.ok for _, p in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
