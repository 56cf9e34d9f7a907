"""`vloop demo` end to end: it is the README's first command, so the suite runs it too."""

from __future__ import annotations

import re

from connector.sandbox.demo import run_demo


def test_demo_runs_the_loop_and_says_what_happened(capsys, tmp_path):
    code = run_demo(tickets=150, seed=3, state=f"sqlite:///{tmp_path / 'demo.db'}")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "1. First sync" in out and "4. Third sync: nothing new" in out and "vloop status" in out
    emailed = int(re.search(r"(\d+) invitations emailed over 1 SMTP connection", out).group(1))
    answered = int(re.search(r"(\d+) answer on the survey page", out).group(1))
    assert emailed > 0 and 0 < answered < emailed
    told = sum(int(n) for n in re.findall(r"(\d+) customers told so", out))
    assert f"The local mail sink received {emailed + told} message(s)" in out
    assert "follow-ups opened for unhappy customers" in out and "detractors:" in out
