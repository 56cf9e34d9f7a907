"""`vloop setup {servicenow,jira} --check|--create` over real HTTP against both simulators.

Exit codes: 0 every write-back field ready, 1 one is not (or a system failed), 2 usage (including
`servicenow --create`, which vloop does not offer: schema changes belong in an update set)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from connector.cli import main
from connector.config import load
from connector.loop.run import sync
from connector.mapping import find_mapping_file
from connector.sandbox.servicenow import FieldSpec
from connector.store import Store
from tests.conftest import ENV, write_config
from tests.integration.helpers import site, world
from tests.integration.test_survey_loop import recent
from tests.integration.test_write_back import answers, native_config

SN_FIELDS = {"u_vloop_score": "score", "u_vloop_band": "band", "u_vloop_answered_at": "answered_at"}
JIRA_FIELDS = {"{Customer score}": "score", "{Customer band}": "band", "{Answered at}": "answered_at"}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def mapping_with(tmp_path: Path, bundled: str, fields: dict[str, str], note: bool = True) -> str:
    doc = yaml.safe_load(find_mapping_file(bundled, tmp_path).read_text())
    doc["write_back"] = {"note": note, "fields": fields}
    path = tmp_path / f"{bundled}-setup.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def run(capsys, *argv: str) -> tuple[int, dict[str, str], str]:
    """Exit code, {field: status line} of stdout, and the whole of stdout."""
    code = main(list(argv))
    out = capsys.readouterr().out
    lines = {}
    for line in out.splitlines():
        found = re.match(r"\w+: (.+?) \(\w+\): ", line)
        if found:
            lines[found.group(1)] = line
    return code, lines, out


def status(line: str) -> str:
    return re.sub(r"^\w+: .+? \(\w+\): ([a-z ]+?)( — .*|; .*)?$", r"\1", line)


# --- ServiceNow -------------------------------------------------------------------------------------


@pytest.fixture
def sn():
    with site("servicenow", world(10)) as s:
        yield s


def test_servicenow_missing_fields_are_reported_with_the_fix(tmp_path, sqlite_url, sn, capsys):
    path = write_config(tmp_path, sqlite_url, {"snow": sn.system(mapping=mapping_with(
        tmp_path, "servicenow-incident", SN_FIELDS))})
    code, lines, _ = run(capsys, "-c", str(path), "setup", "servicenow", "--check")
    assert code == 1
    assert {f: status(line) for f, line in lines.items()} == {
        "u_vloop_score": "missing", "u_vloop_band": "missing", "u_vloop_answered_at": "missing", "work_notes": "ok"}
    assert ('add incident.u_vloop_score: Integer, label "VLoop score" in an update set (docs/servicenow.md, '
            '"Write-back fields")') in lines["u_vloop_score"]
    assert 'u_vloop_band: String (40), label "VLoop band"' in lines["u_vloop_band"]
    assert "Date/Time" in lines["u_vloop_answered_at"]


def test_servicenow_fields_added_to_the_dictionary_are_ok(tmp_path, sqlite_url, sn, capsys):
    sn.sim.register_table("incident", {"u_vloop_score": "integer", "u_vloop_band": "string",
                                       "u_vloop_answered_at": "glide_date_time"})
    path = write_config(tmp_path, sqlite_url, {"snow": sn.system(mapping=mapping_with(
        tmp_path, "servicenow-incident", SN_FIELDS))})
    code, lines, _ = run(capsys, "-c", str(path), "setup", "servicenow", "--check")
    out = "\n".join(lines.values())
    assert code == 0, out
    assert set(map(status, lines.values())) == {"ok"}
    assert "u_vloop_score (score): ok — Integer on incident" in lines["u_vloop_score"]


def test_servicenow_wrong_types_are_named(tmp_path, sqlite_url, sn, capsys):
    sn.sim.register_table("incident", {"u_vloop_score": "glide_date_time", "u_vloop_band": "choice",
                                       "u_vloop_answered_at": "string"})
    path = write_config(tmp_path, sqlite_url, {"snow": sn.system(mapping=mapping_with(
        tmp_path, "servicenow-incident", SN_FIELDS, note=False))})
    code, lines, _ = run(capsys, "-c", str(path), "setup", "servicenow", "--check")
    assert code == 1 and "work_notes" not in lines  # note: false, so the journal is not needed
    assert {f: status(line) for f, line in lines.items()} == {
        "u_vloop_score": "wrong type", "u_vloop_band": "ok", "u_vloop_answered_at": "wrong type"}
    assert "score needs Decimal or Floating Point Number or Integer or String" in lines["u_vloop_score"]
    assert "answered_at needs Date/Time" in lines["u_vloop_answered_at"]


def test_servicenow_read_only_and_too_short_columns(tmp_path, sqlite_url, sn, capsys):
    sn.sim.register_table("incident", {"u_vloop_score": FieldSpec("integer", read_only=True),
                                       "u_vloop_band": FieldSpec("string", max_length=8),
                                       "u_vloop_answered_at": FieldSpec("glide_date_time")})
    path = write_config(tmp_path, sqlite_url, {"snow": sn.system(mapping=mapping_with(
        tmp_path, "servicenow-incident", SN_FIELDS))})
    code, lines, _ = run(capsys, "-c", str(path), "setup", "servicenow", "--check")
    assert code == 1
    assert {f: status(line) for f, line in lines.items()} == {
        "u_vloop_score": "not writable", "u_vloop_band": "wrong type", "u_vloop_answered_at": "ok", "work_notes": "ok"}
    assert "read only in the dictionary; fix: clear Read only" in lines["u_vloop_score"]
    assert 'max length 8; fix: set its Max length to 40: "dissatisfied" does not fit' in lines["u_vloop_band"]


def test_servicenow_check_says_acls_are_not_checked(tmp_path, sqlite_url, sn, capsys):
    path = write_config(tmp_path, sqlite_url, {"snow": sn.system()})  # bundled mapping: the note only
    assert main(["-c", str(path), "setup", "servicenow", "--check"]) == 0
    out = capsys.readouterr().out
    assert "snow: work_notes (note): ok" in out
    assert "write access is not checked" in out and "Closed incident needs a write ACL" in out


def test_servicenow_create_is_not_offered_and_lists_the_fields(tmp_path, sqlite_url, sn, capsys):
    path = write_config(tmp_path, sqlite_url, {"snow": sn.system()})
    assert main(["-c", str(path), "setup", "servicenow", "--create"]) == 2
    out, err = capsys.readouterr()
    assert "not offered" in err and "update set" in err and "docs/servicenow.md" in err
    assert out.splitlines() == [
        'snow: incident.u_vloop_score: Integer, label "VLoop score"',
        'snow: incident.u_vloop_band: String (40), label "VLoop band"',
        'snow: incident.u_vloop_sentiment: String (20), label "VLoop sentiment" (optional)',
        'snow: incident.u_vloop_answered_at: Date/Time, label "VLoop answered at" (optional)',
        "snow: then list them in the mapping's write_back.fields, e.g. {u_vloop_score: score, u_vloop_band: band}",
    ]
    assert sn.requests() == 0  # nothing was asked of the instance


def test_system_selection_is_a_usage_error_when_it_names_nothing(tmp_path, sqlite_url, sn, capsys):
    with site("jira", world(5)) as jira:
        path = write_config(tmp_path, sqlite_url, {"snow": sn.system(), "jsm": jira.system()})
        assert main(["-c", str(path), "setup", "servicenow", "--check", "--system", "jsm"]) == 2
        assert "no servicenow system named 'jsm'" in capsys.readouterr().err
    path = write_config(tmp_path, sqlite_url, {"snow": sn.system()})
    assert main(["-c", str(path), "setup", "jira", "--check"]) == 2
    assert "no enabled jira system is configured" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["-c", str(path), "setup", "servicenow"])  # --check or --create is required
    assert info.value.code == 2


def test_an_unreachable_system_fails_the_check_and_the_others_still_run(tmp_path, sqlite_url, sn, capsys):
    gone = {**sn.system(http={"retry": {"max_attempts": 1}}), "url": "http://127.0.0.1:9"}
    path = write_config(tmp_path, sqlite_url, {"gone": gone, "snow": sn.system()})
    assert main(["-c", str(path), "setup", "servicenow", "--check"]) == 1
    out, err = capsys.readouterr()
    assert "gone:" in err and "connection failed" in err and "snow: work_notes (note): ok" in out


# --- Jira ---------------------------------------------------------------------------------------------


def jira_config(tmp_path, sqlite_url, jira, fields=JIRA_FIELDS) -> Path:
    bundled = "jira-data-center" if jira.sim.mode == "datacenter" else "jira-service-management"
    return write_config(tmp_path, sqlite_url, {"jsm": jira.system(mapping=mapping_with(tmp_path, bundled, fields))})


@pytest.mark.parametrize("mode", ["cloud", "datacenter"])
def test_jira_missing_fields_then_fields_on_the_edit_screen_are_ok(tmp_path, sqlite_url, capsys, mode):
    with site("jira", world(10), mode=mode) as jira:
        path = jira_config(tmp_path, sqlite_url, jira)
        code, lines, _ = run(capsys, "-c", str(path), "setup", "jira", "--check")
        assert code == 1 and set(map(status, lines.values())) == {"missing"}
        assert 'create a Number custom field named "Customer score": vloop setup jira --create' in \
            lines["{Customer score}"]
        jira.sim.add_field("Customer score", "number")
        jira.sim.add_field("Customer band", "text")
        jira.sim.add_field("Answered at", "datetime")
        code, lines, _ = run(capsys, "-c", str(path), "setup", "jira", "--check")
    assert code == 0, lines
    assert set(map(status, lines.values())) == {"ok"}
    assert re.search(r"customfield_\d+, Number, editable on ITSD-\d+$", lines["{Customer score}"])


def test_jira_fields_off_the_edit_screen_or_of_the_wrong_type(tmp_path, sqlite_url, capsys):
    with site("jira", world(10)) as jira:
        jira.sim.add_field("Customer score", "number", on_screen=False)
        jira.sim.add_field("Customer band", "select", options=["detractor", "passive", "promoter"])
        jira.sim.add_field("Answered at", "text")
        code, lines, _ = run(capsys, "-c", str(jira_config(tmp_path, sqlite_url, jira)), "setup", "jira", "--check")
    assert code == 1
    assert {f: status(line) for f, line in lines.items()} == {
        "{Customer score}": "not writable", "{Customer band}": "wrong type", "{Answered at}": "wrong type"}
    assert "not on the edit screen of ITSD-" in lines["{Customer score}"]
    assert "fix: add it to the edit screen" in lines["{Customer score}"]
    assert "without the option(s) difficult, dissatisfied, easy, neutral, satisfied" in lines["{Customer band}"]
    assert "answered_at needs Date Time Picker" in lines["{Answered at}"]


@pytest.mark.parametrize("mode", ["cloud", "datacenter"])
def test_jira_create_with_admin_rights_then_screen_then_write_back(tmp_path, sqlite_url, capsys, mode):
    with site("jira", recent(60, seed=91), mode=mode, admin=True) as jira:
        path = jira_config(tmp_path, sqlite_url, jira)
        jira.sim.add_field("Customer band", "text")  # one exists already: only the others are created
        code, lines, _ = run(capsys, "-c", str(path), "setup", "jira", "--create")
        out = "\n".join(lines.values())
        assert code == 0, out
        assert {f: status(line) for f, line in lines.items()} == {
            "{Customer score}": "created", "{Customer band}": "ok", "{Answered at}": "created"}
        version = "3" if mode == "cloud" else "2"
        assert jira.server.faults.count(f"/rest/api/{version}/field", "POST") == 2
        assert main(["-c", str(path), "setup", "jira", "--create"]) == 1  # created, but not on a screen yet
        assert "created" not in capsys.readouterr().out
        code, lines, _ = run(capsys, "-c", str(path), "setup", "jira", "--check")
        assert code == 1 and status(lines["{Customer score}"]) == "not writable"
        for name in ("Customer score", "Answered at"):
            jira.sim.add_to_screen(jira.sim.field_id(name))
        code, lines, _ = run(capsys, "-c", str(path), "setup", "jira", "--check")
        assert code == 0 and set(map(status, lines.values())) == {"ok"}
        # The fields it created take the write-backs.
        loaded = load(native_config(tmp_path, sqlite_url, yaml.safe_load(path.read_text())["systems"]), env=ENV)
        store = Store.open(sqlite_url)
        result = sync(loaded, store)
        store.close()
        got = answers(sqlite_url)
        assert result.write_backs[0].written == len(got) > 0 and result.write_backs[0].failed == 0
        ticket = next(iter(got))
        issue = next(i for i in (jira.sim.issue(f"ITSD-{t.seq}") for t in jira.sim.world.tickets)
                     if str(i["id"]) == ticket)
        assert issue["fields"][jira.sim.field_id("Customer score")] == got[ticket][1]
        assert issue["fields"][jira.sim.field_id("Answered at")] is not None


def test_jira_create_without_admin_rights_says_who_must_create_what(tmp_path, sqlite_url, capsys):
    with site("jira", world(10), admin=False) as jira:
        before = len(jira.sim._fields)
        code, lines, out = run(capsys, "-c", str(jira_config(tmp_path, sqlite_url, jira)), "setup", "jira", "--create")
        # Stopped after the first refusal: nothing created, no more tries.
        assert len(jira.sim._fields) == before and jira.server.faults.count("/field", "POST") == 1
    assert code == 1 and set(map(status, lines.values())) == {"missing"}
    assert "Jira refused to create it (HTTP 400)" in lines["{Customer score}"]
    assert 'a Jira administrator creates a Number field named "Customer score"' in lines["{Customer score}"]
    assert "Only Jira administrators can create custom fields." in out  # Jira's own words
    assert "needs the Administer Jira global permission" in out
    assert ('Ask a Jira administrator to create "Customer score" (Number), "Customer band" (Short text (single '
            'line)), "Answered at" (Date Time Picker) and add them to the edit screen') in out


def test_jira_without_write_back_fields_has_nothing_to_check(tmp_path, sqlite_url, capsys):
    with site("jira", world(5)) as jira:
        path = write_config(tmp_path, sqlite_url, {"jsm": jira.system()})  # bundled: the internal comment only
        assert main(["-c", str(path), "setup", "jira", "--check"]) == 0
        assert main(["-c", str(path), "setup", "jira", "--create"]) == 0
    out = capsys.readouterr().out
    assert out.count("lists no write_back fields") == 2 and "vloop setup jira --create" in out


@pytest.mark.parametrize("mode", ["cloud", "datacenter"])
def test_jira_fields_named_by_id_are_checked_like_named_ones(tmp_path, sqlite_url, capsys, mode):
    with site("jira", world(10), mode=mode) as jira:
        score = jira.sim.add_field("Customer score", "number")
        band = jira.sim.add_field("Customer band", "text", on_screen=False)
        answered = jira.sim.add_field("Answered at", "text")
        fields = {score: "score", band: "band", answered: "answered_at", "customfield_99999": "sentiment"}
        code, lines, _ = run(capsys, "-c", str(jira_config(tmp_path, sqlite_url, jira, fields)), "setup", "jira",
                             "--check")
    assert code == 1
    assert {f: status(line) for f, line in lines.items()} == {
        score: "ok", band: "not writable", answered: "wrong type", "customfield_99999": "missing"}
    assert re.search(rf'^jsm: {score} \(score\): ok — "Customer score", Number, editable on ITSD-\d+$', lines[score])
    assert "answered_at needs Date Time Picker" in lines[answered]
    assert lines["customfield_99999"].endswith(
        "missing — no field has this id (or the integration user cannot see it); fix: correct the id (Jira settings "
        "→ Issues → Custom fields, or GET /rest/api/3/field), or name the field by display name in braces")


def test_jira_create_makes_the_named_fields_and_leaves_a_missing_id_to_the_admin(tmp_path, sqlite_url, capsys):
    with site("jira", world(10), admin=True) as jira:
        path = jira_config(tmp_path, sqlite_url, jira, {"{Customer score}": "score", "customfield_99999": "band"})
        code, lines, _ = run(capsys, "-c", str(path), "setup", "jira", "--create")
        posted = jira.server.faults.count("/rest/api/3/field", "POST")
    assert code == 1 and posted == 1  # an id cannot be chosen when creating: only the named field is made
    assert {f: status(line) for f, line in lines.items()} == {"{Customer score}": "created",
                                                              "customfield_99999": "missing"}
    assert "correct the id" in lines["customfield_99999"]
