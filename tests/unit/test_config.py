"""Config loading: every problem reported at once, as `file:line: key.path: what is wrong`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from connector.config import load, parse_duration
from connector.errors import ConfigError
from connector.redact import redact

GOOD = """\
state: sqlite:///vloop.db
systems:
  snow:
    kind: servicenow
    url: https://acme.service-now.com
    auth: {user: vloop, password: "${SN_PASSWORD}"}
    mapping: servicenow-incident
  jsm:
    kind: jira
    url: https://acme.atlassian.net
    auth: {email: vloop@example.com, token: "file:jira-token"}
    mapping: jira-service-management
    jql: project = ITSD
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vloop.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), env=env or {})
    return [str(p).replace(f"{tmp_path}/", "") for p in info.value.problems]


def test_good_config_loads_with_env_and_file_secrets(tmp_path):
    (tmp_path / "jira-token").write_text("jira-token-value-123\n")
    loaded = load(write(tmp_path, GOOD), env={"SN_PASSWORD": "sn-password-value"})
    snow = loaded.config.systems["snow"]
    assert snow.auth.password.get_secret_value() == "sn-password-value"
    assert loaded.config.systems["jsm"].auth.token.get_secret_value() == "jira-token-value-123"
    assert loaded.mappings["snow"].table == "incident"
    assert snow.pull.overlap == timedelta(minutes=10)


def test_secrets_are_masked_once_loaded(tmp_path):
    (tmp_path / "jira-token").write_text("jira-token-value-123")
    load(write(tmp_path, GOOD), env={"SN_PASSWORD": "sn-password-value"})
    assert redact("GET failed for sn-password-value and jira-token-value-123") == "GET failed for *** and ***"
    assert "sn-password-value" not in repr(load(write(tmp_path, GOOD), env={"SN_PASSWORD": "sn-password-value"}))


def test_every_problem_is_reported_at_once_with_lines(tmp_path):
    text = GOOD.replace("state: sqlite:///vloop.db", "state: sqlite:///vloop.db\nstat: typo") \
               .replace("jql: project = ITSD", "jql: project = ITSD\n    http: {read_timeout: 0, retries: 3}")
    found = problems(tmp_path, text)
    assert "vloop.yaml:2: stat: unknown key" in found
    assert "vloop.yaml:7: systems.snow.auth.password: environment variable SN_PASSWORD is not set" in found
    assert any(p.startswith("vloop.yaml:12: systems.jsm.auth.token: cannot read secret file") for p in found)
    assert "vloop.yaml:15: systems.jsm.http.read_timeout: Input should be greater than 0" in found
    assert "vloop.yaml:15: systems.jsm.http.retries: unknown key" in found
    assert len(found) == 5


@pytest.mark.parametrize(("snippet", "expected"), [
    ("kind: remedy", "systems.snow: unknown kind; expected one of 'servicenow', 'jira'"),
    ("url: not-a-url", "systems.snow.url: Input should be a valid URL"),
    ("mapping: no-such-mapping.yaml", "systems.snow.mapping: cannot read mapping"),
    ("mapping: jira-service-management", "kind: mapping is for jira, system is servicenow"),
])
def test_single_problems_name_key_and_fix(tmp_path, snippet, expected):
    key = snippet.split(":")[0]
    lines = GOOD.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:"))
    lines[index] = "    " + snippet
    found = problems(tmp_path, "\n".join(lines) + "\n", env={"SN_PASSWORD": "x" * 8})
    assert any(expected in p for p in found), found


def test_malformed_yaml_names_the_line(tmp_path):
    found = problems(tmp_path, "systems:\n  snow: {kind: servicenow\n  url: x\n")
    assert len(found) == 1 and found[0].startswith("vloop.yaml:") and "invalid YAML" in found[0]


def test_duplicate_keys_are_refused(tmp_path):
    found = problems(tmp_path, "state: a\nstate: b\nsystems: {}\n")
    assert "duplicate key 'state'" in found[0] and found[0].startswith("vloop.yaml:2")


def test_env_default_is_used_when_unset(tmp_path):
    text = GOOD.replace('"${SN_PASSWORD}"', '"${SN_PASSWORD:-fallback-pass}"').replace('"file:jira-token"', "tok-12345")
    loaded = load(write(tmp_path, text), env={})
    assert loaded.config.systems["snow"].auth.password.get_secret_value() == "fallback-pass"


@pytest.mark.parametrize(("raw", "seconds"), [("90s", 90), ("10m", 600), ("1h", 3600), ("30d", 2592000),
                                              ("2w", 1209600), (45, 45), ("1.5h", 5400), ("250ms", 0.25)])
def test_durations(raw, seconds):
    assert parse_duration(raw) == timedelta(seconds=seconds)


def test_bad_duration_is_a_problem(tmp_path):
    text = GOOD.replace("    jql: project = ITSD", "    jql: project = ITSD\n    pull: {overlap: ten minutes}")
    found = problems(tmp_path, text, env={"SN_PASSWORD": "x" * 8})
    assert any("systems.jsm.pull.overlap" in p and "a duration like" in p for p in found), found


# --- survey questions (surveys.<name>.questions) -------------------------------------------------------

SURVEYED = GOOD.replace('"file:jira-token"', "jira-token-value-123") + """\
secret_key: "0123456789abcdef0123456789abcdef"
public_url: https://feedback.example.com
channels:
  email: {from: "Service Desk <desk@example.com>"}
surveys:
  resolved:
    kind: KIND
    default_language: LANGUAGE
    questions:
QUESTIONS"""


def surveyed(questions: str, kind: str = "nps", language: str = "en") -> str:
    body = "\n".join("      " + line for line in questions.strip("\n").splitlines())
    return SURVEYED.replace("KIND", kind).replace("LANGUAGE", language).replace("QUESTIONS", body + "\n")


CHOICES = "choices: [{id: a, text: {en: A}}, {id: b, text: {en: B}}]"


@pytest.mark.parametrize(("questions", "expected"), [
    ("- {id: Contact-Me, type: yes_no, text: {en: Q}}",
     "questions[0].id: id 'Contact-Me': use 1-40 of a-z, 0-9 and _"),
    ("- {id: " + "a" * 41 + ", type: yes_no, text: {en: Q}}", "questions[0].id: id 'aaaa"),
    ("- {id: reasons, type: yes_no, text: {en: Q}}", "questions[0].id: reasons is used by the survey page itself"),
    ("- {id: score, type: yes_no, text: {en: Q}}", "questions[0].id: score is used by the survey page itself"),
    ("- {id: again, type: yes_no, text: {en: Q}}\n- {id: again, type: text, text: {en: R}}",
     "surveys.resolved.questions: id again is used by more than one question"),
    ("- {id: q, type: rating, text: {en: Q}}",
     "questions[0].type: Input should be 'choice', 'multi', 'text' or 'yes_no'"),
    ("- {id: q, text: {en: Q}}", "questions[0].type: required key is missing"),
    ("- {id: q, type: yes_no, text: {sv: Fråga}}",
     "questions[0].text: needs a text in en, the survey's default_language"),
    ("- {id: q, type: yes_no, text: {en: Q, swedish: F}}",
     "questions[0].text: swedish: use one language code per text, e.g. en or sv"),
    ("- {id: q, type: yes_no, text: {en: Q, sv: F, SV: G}}",
     "questions[0].text: a language twice: use one language code per text"),
    ("- {id: q, type: yes_no, text: {en: '  '}}", "questions[0].text.en: String should have at least 1 character"),
    ("- {id: q, type: yes_no, text: {}}", "questions[0].text: give the text per language"),
    ("- {id: q, type: choice, text: {en: Q}}", "questions[0].choices: required for type choice"),
    ("- {id: q, type: multi, text: {en: Q}}", "questions[0].choices: required for type multi"),
    ("- {id: q, type: yes_no, text: {en: Q}, " + CHOICES + "}",
     "questions[0].choices: only for types choice and multi, not yes_no"),
    ("- {id: q, type: choice, text: {en: Q}, choices: [{id: a, text: {en: A}}]}",
     "questions[0].choices: List should have at least 2 items"),
    ("- {id: q, type: choice, text: {en: Q}, choices: [{id: a, text: {en: A}}, {id: a, text: {en: B}}]}",
     "questions[0].choices: choice id a is used more than once"),
    ("- {id: q, type: choice, text: {en: Q}, choices: [{id: a, text: {en: A}}, {id: b, text: {sv: B}}]}",
     "questions[0].choices[1].text: needs a text in en"),
    ("- {id: q, type: choice, text: {en: Q}, choices: [{id: 'A b', text: {en: A}}, {id: b, text: {en: B}}]}",
     "questions[0].choices[0].id: choice id 'A b': use 1-40 of a-z"),
    ("- {id: q, type: choice, text: {en: Q}, choices: [{id: a, text: {en: A}, score: 1}, {id: b, text: {en: B}}]}",
     "questions[0].choices[0].score: unknown key"),
    ("- {id: q, type: yes_no, text: {en: Q}, bands: [satisfied]}",
     "questions[0].bands: satisfied: not a band of nps; use detractor, passive, promoter"),
    ("- {id: q, type: yes_no, text: {en: Q}, bands: []}", "questions[0].bands: List should have at least 1 item"),
    ("- {id: q, type: yes_no, text: {en: Q}, bands: [detractor, detractor]}",
     "questions[0].bands: band detractor is listed more than once"),
    ("- {id: q, type: yes_no, text: {en: Q}, when: detractor}", "questions[0].when: unknown key"),
    ("- {id: q, type: yes_no, text: {en: Q}, required: sometimes}",
     "questions[0].required: Input should be a valid boolean"),
    ("\n".join(f"- {{id: q{i}, type: yes_no, text: {{en: Q}}}}" for i in range(21)),
     "surveys.resolved.questions: List should have at most 20 items"),
], ids=["id-characters", "id-too-long", "id-reasons", "id-score", "id-twice", "unknown-type", "no-type",
        "no-default-language-text", "language-code", "language-twice", "blank-text", "no-text", "choice-without-choices",
        "multi-without-choices", "choices-on-yes-no", "one-choice", "choice-id-twice",
        "choice-without-default-language", "choice-id-characters", "choice-unknown-key", "band-of-other-kind",
        "no-bands", "band-twice", "unknown-key", "required-not-bool", "too-many"])
def test_bad_questions_are_reported_with_their_key(tmp_path, questions, expected):
    found = problems(tmp_path, surveyed(questions), env={"SN_PASSWORD": "x" * 8})
    assert len(found) == 1 and expected in found[0], found
    assert found[0].startswith("vloop.yaml:") and ": surveys.resolved.questions" in found[0]


def test_question_texts_follow_the_surveys_own_kind_and_default_language(tmp_path):
    found = problems(tmp_path, surveyed("- {id: q, type: yes_no, text: {en: Q}, bands: [detractor]}",
                                        kind="ces", language="sv"), env={"SN_PASSWORD": "x" * 8})
    assert sorted(p.split(": ", 1)[1] for p in found) == [
        "surveys.resolved.questions[0].bands: detractor: not a band of ces; use difficult, neutral, easy",
        "surveys.resolved.questions[0].text: needs a text in sv, the survey's default_language (shown when the "
        "respondent's language has none)"]


def test_every_bad_question_is_reported_at_once_on_its_line(tmp_path):
    questions = """
- id: fine
  type: yes_no
  text: {en: 'Fine?'}
- id: Bad
  type: yes_no
  text: {en: Q}
- id: late
  type: choice
  text: {sv: Fråga}
  choices: [{id: a, text: {en: A}}, {id: b, text: {en: B}}]
  bands: [satisfied]
"""
    text = surveyed(questions)
    lines = text.splitlines()
    found = problems(tmp_path, text, env={"SN_PASSWORD": "x" * 8})

    def line(snippet: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if snippet in line)

    assert sorted(found) == sorted([
        f"vloop.yaml:{line('id: Bad')}: surveys.resolved.questions[1].id: id 'Bad': use 1-40 of a-z, 0-9 and _ "
        "(e.g. contact_channel)",
        f"vloop.yaml:{line('text: {sv: Fråga}')}: surveys.resolved.questions[2].text: needs a text in en, the "
        "survey's default_language (shown when the respondent's language has none)",
        f"vloop.yaml:{line('bands: [satisfied]')}: surveys.resolved.questions[2].bands: satisfied: not a band of "
        "nps; use detractor, passive, promoter",
    ])


@pytest.mark.parametrize(("kind", "language", "questions", "expected"), [
    ("nps", "en", "[]", []),
    ("nps", "en", "- {id: channel, type: choice, required: true, text: {en: 'How?', sv: 'Hur?'}, " + CHOICES + "}",
     [("channel", "choice", True, None, ["a", "b"])]),
    ("csat", "en", "- {id: topics, type: multi, text: {en: 'About?'}, " + CHOICES + "}\n"
                   "- {id: call_back, type: yes_no, text: {en: 'Call?'}, bands: [dissatisfied, neutral]}",
     [("topics", "multi", False, None, ["a", "b"]), ("call_back", "yes_no", False, ["dissatisfied", "neutral"], [])]),
    ("ces", "sv", "- {id: idea_2, type: text, text: {sv: '  Idé?  '}, bands: [difficult]}",
     [("idea_2", "text", False, ["difficult"], [])]),
    ("nps", "sv-SE", "- {id: again, type: yes_no, text: {SV: 'Igen?', en_GB: 'Again?'}}",
     [("again", "yes_no", False, None, [])]),
], ids=["none", "choice", "multi-and-band", "swedish-default", "regional-codes"])
def test_good_questions_load(tmp_path, kind, language, questions, expected):
    text = surveyed(questions, kind=kind, language=language).replace("    questions:\n      []", "    questions: []")
    survey = load(write(tmp_path, text), env={"SN_PASSWORD": "x" * 8}).config.surveys["resolved"]
    assert [(q.id, q.type, q.required, q.bands, [c.id for c in q.choices or ()]) for q in survey.questions] == expected
    if kind == "ces":
        assert survey.questions[0].text == {"sv": "Idé?"}  # blanks around texts are dropped
    if language == "sv-SE":  # sv answers for sv-SE; codes are stored in one form
        assert survey.questions[0].text == {"sv": "Igen?", "en-gb": "Again?"}


def test_questions_default_to_none(tmp_path):
    text = SURVEYED.replace("KIND", "nps").replace("LANGUAGE", "en").replace("    questions:\nQUESTIONS", "")
    assert load(write(tmp_path, text), env={"SN_PASSWORD": "x" * 8}).config.surveys["resolved"].questions == []


def test_a_broken_theme_taxonomy_is_a_config_error_naming_its_file_and_key(tmp_path):
    (tmp_path / "themes.yaml").write_text("themes:\n  - id: slow\n    label: {en: Slow}\n"
                                          "    patterns: {en: ['(unclosed']}\n")
    (tmp_path / "vloop.yaml").write_text("systems: {}\nanalytics:\n  themes: themes.yaml\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "vloop.yaml", env={})
    assert "themes.yaml:4: themes[0].patterns.en[0]: invalid regular expression" in str(caught.value)


@pytest.mark.parametrize(("follow_up", "form", "issue_type", "project"), [
    ("", "linked", "Task", None),
    ("    follow_up: {project: OPS}\n", "linked", "Task", "OPS"),
    ("    follow_up: {as: subtask}\n", "subtask", "Sub-task", None),
    ("    follow_up: {as: subtask, issue_type: Sub-Task}\n", "subtask", "Sub-Task", None),
])
def test_jira_follow_up_forms_and_their_default_issue_types(tmp_path, follow_up, form, issue_type, project):
    text = GOOD.replace('"file:jira-token"', "tok-12345") + follow_up
    target = load(write(tmp_path, text), env={"SN_PASSWORD": "x" * 8}).config.systems["jsm"].follow_up
    assert (target.as_, target.type_name, target.project) == (form, issue_type, project)


def test_a_subtask_follow_up_refuses_project_and_link_type_naming_the_key_and_the_reason(tmp_path):
    text = GOOD.replace('"file:jira-token"', "tok-12345") + (
        "    follow_up:\n      as: subtask\n      project: OPS\n      link_type: Blocks\n")
    assert problems(tmp_path, text, env={"SN_PASSWORD": "x" * 8}) == [
        "vloop.yaml:16: systems.jsm.follow_up.project: a sub-task lives in its parent's project, the ticket's own: "
        "remove project, or use as: linked to create follow-ups in another project",
        "vloop.yaml:17: systems.jsm.follow_up.link_type: a sub-task is tied to the ticket as its parent, with no "
        "issue link: remove link_type, or use as: linked",
    ]
    wrong = GOOD.replace('"file:jira-token"', "tok-12345") + "    follow_up: {as: child}\n"
    assert problems(tmp_path, wrong, env={"SN_PASSWORD": "x" * 8}) == [
        "vloop.yaml:14: systems.jsm.follow_up.as: Input should be 'linked' or 'subtask'"]
