"""Load and validate the configuration and its mappings, reporting every problem at once.

Secrets come from `${ENV}` references (anywhere in a string) or `file:/path` values (on secret keys);
each resolved secret is registered for redaction before anything can log it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connector.errors import ConfigError, ConfigProblem
from connector.expression import ValueType, compile_expression
from connector.redact import register_secret
from connector.surveys.definitions import SCALES
from connector.yamlsource import PathKey, YamlDoc, load_yaml

SECRET_KEYS = frozenset({"password", "token", "client_secret", "secret_key", "secret"})
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> Any:
    """Accept `90s`, `10m`, `1h`, `30d`, `2w` (and plain seconds) as well as pydantic's own forms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
        if not value.strip().upper().startswith("P"):
            raise ValueError("a duration like 90s, 10m, 1h, 30d or 2w")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    """Base for config objects: unknown keys are errors (typos must not pass silently), values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryOptions(Strict):
    max_attempts: int = Field(8, ge=1, le=50, description="Attempts per request, the first included.")
    max_wait: Duration = Field(timedelta(seconds=60), description="Longest single back-off wait.")
    budget: Duration = Field(timedelta(minutes=15), description="Overall time allowed for one request with retries.")


class HttpOptions(Strict):
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to establish a connection.")
    read_timeout: float = Field(60.0, gt=0, description="Seconds to wait for each response.")
    verify_tls: bool = Field(True, description="Verify TLS certificates; only turn off for a lab instance.")
    ca_bundle: str | None = Field(None, description="PEM file of the CA certificates to trust instead of the default "
                                  "store (e.g. a corporate TLS-inspection CA plus the public ones).")
    proxy: str | None = Field(None, description="HTTPS proxy URL, e.g. http://proxy.example.com:3128.")
    max_concurrency: int = Field(4, ge=1, le=64, description="Requests in flight at once toward this system.")
    requests_per_second: float = Field(0.0, ge=0, description="Pacing ceiling; 0 means unpaced.")
    retry: RetryOptions = RetryOptions()


class PullOptions(Strict):
    page_size: int | None = Field(None, ge=1, le=10000, description="Rows per page; default from the mapping.")
    overlap: Duration = Field(timedelta(minutes=10), description="Re-read this far behind the cursor each run.")
    safety_lag: Duration = Field(timedelta(minutes=1), description="Never move the cursor closer to now than this.")
    initial_lookback: Duration = Field(timedelta(days=30), description="How far back the first run starts.")
    commit_every: int = Field(5000, ge=1, le=100000, description="Store pulled tickets and move the cursor "
                              "after this many (and every 5 s); a crash re-reads at most this many.")


class BasicAuth(Strict):
    user: str
    password: SecretStr


class OAuthClientCredentials(Strict):
    client_id: str
    client_secret: SecretStr
    token_url: str | None = Field(None, description="Default: <url>/oauth_token.do")


class JiraTokenAuth(Strict):
    email: str
    token: SecretStr


class BearerAuth(Strict):
    token: SecretStr


def _auth_tag(value: Any) -> str:
    if isinstance(value, dict):
        if "client_id" in value or "client_secret" in value:
            return "oauth"
        if "email" in value:
            return "jira_token"
        if "token" in value:
            return "bearer"
    return "basic"


ServiceNowAuth = Annotated[
    Annotated[BasicAuth, Tag("basic")] | Annotated[OAuthClientCredentials, Tag("oauth")],
    Discriminator(_auth_tag),
]
JiraAuth = Annotated[
    Annotated[JiraTokenAuth, Tag("jira_token")] | Annotated[BearerAuth, Tag("bearer")]
    | Annotated[BasicAuth, Tag("basic")],
    Discriminator(_auth_tag),
]


class ServiceNowFollowUp(Strict):
    table: str = Field("incident_task", description="Table of the follow-up record (a task table: it needs "
                       "parent, assignment_group, due_date, correlation_id).")
    parent_field: str = Field("incident", description="Reference field on that table pointing at the ticket.")


class JiraFollowUp(Strict):
    """Where a detractor's follow-up goes in Jira: an issue linked to the ticket, or a sub-task of it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Declared first: the checks of project and link_type below read it.
    as_: Literal["linked", "subtask"] = Field(
        "linked", alias="as", description="linked: an issue of its own, linked to the ticket; subtask: a "
        "sub-task of the ticket, in the ticket's project (its parent is the link).")
    project: str | None = Field(None, description="Project key of a linked follow-up issue; default the ticket's "
                                "own. Not with as: subtask.")
    issue_type: str | None = Field(None, description="Issue type of the follow-up; default Task (linked) or "
                                   "the project's own sub-task type as Jira lists it (subtask); with subtask "
                                   "it must be a sub-task type of the project.")
    link_type: str = Field("Relates", description="Issue link type between a linked follow-up and the ticket. "
                           "Not with as: subtask.")

    @field_validator("project", "link_type")
    @classmethod
    def _linked_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("as_") != "subtask" or value is None:
            return value
        if info.field_name == "project":
            raise ValueError("a sub-task lives in its parent's project, the ticket's own: remove project, or use "
                             "as: linked to create follow-ups in another project")
        raise ValueError("a sub-task is tied to the ticket as its parent, with no issue link: remove link_type, "
                         "or use as: linked")

    @property
    def subtask(self) -> bool:
        return self.as_ == "subtask"

    @property
    def type_name(self) -> str:
        """The issue type to create: the configured one, else the default of the chosen form (for sub-tasks,
        the classic name, used where the project's own cannot be read)."""
        return self.issue_type or ("Sub-task" if self.subtask else "Task")


class ServiceNowSystem(Strict):
    kind: Literal["servicenow"]
    url: AnyHttpUrl
    auth: ServiceNowAuth
    mapping: str = Field(description="Mapping file, relative to this config file or a bundled mapping name.")
    query: str | None = Field(None, description="Extra encoded query ANDed to the mapping's resolved query.")
    enabled: bool = True
    http: HttpOptions = HttpOptions()
    pull: PullOptions = PullOptions()
    follow_up: ServiceNowFollowUp = ServiceNowFollowUp()


class JiraSystem(Strict):
    kind: Literal["jira"]
    url: AnyHttpUrl
    auth: JiraAuth
    mapping: str
    jql: str | None = Field(None, description="Restriction ANDed to the mapping's JQL, e.g. project = ITSD.")
    deployment: Literal["auto", "cloud", "datacenter"] = Field("auto", description="auto reads serverInfo.")
    enabled: bool = True
    http: HttpOptions = HttpOptions()
    pull: PullOptions = PullOptions()
    follow_up: JiraFollowUp = JiraFollowUp()


SystemConfig = Annotated[ServiceNowSystem | JiraSystem, Field(discriminator="kind")]


class LogOptions(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class SurveyExclusions(Strict):
    fields: dict[str, list[str]] = Field(default_factory=dict, description="Ticket field -> values never surveyed, "
                                         "e.g. {category: [security]}. Fields: group, service, category, priority, "
                                         "channel.")
    requester_is_assignee: bool = Field(True, description="Skip tickets the requester resolved themselves.")
    vip: list[str] = Field(default_factory=list, description="Emails (or person keys) never surveyed.")


# Form fields and answer keys of the survey page (connector/surveys/web.py): no question may take them.
RESERVED_QUESTION_IDS = frozenset({"score", "reason", "reasons", "comment", "csrf", "lang"})
QUESTION_ID = re.compile(r"^[a-z0-9_]{1,40}$")
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$")
# (kind, default_language) of the survey being validated, so a question can check its bands and texts
# where they are written (`surveys.x.questions[0].text`) rather than at the survey. Set by SurveyConfig.
_SURVEY_BEING_VALIDATED: ContextVar[tuple[str | None, str | None] | None] = ContextVar(
    "vloop_survey_being_validated", default=None)

QuestionText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def _check_identifier(value: str, what: str) -> str:
    if not QUESTION_ID.fullmatch(value):
        raise ValueError(f"{what} {value!r}: use 1-40 of a-z, 0-9 and _ (e.g. contact_channel)")
    return value


def language_code(code: str) -> str:
    """`sv_SE` and `SV-se` are `sv-se`: the form question texts are keyed by."""
    return code.strip().replace("_", "-").lower()


def same_language(a: str, b: str) -> bool:
    """Whether two (normalised) codes are one language: `sv-se` is `sv`."""
    return a.split("-")[0] == b.split("-")[0]


def _check_texts(texts: dict[str, str]) -> dict[str, str]:
    """Keys are language codes (normalised), and the survey's default_language has a text (the fallback)."""
    if not texts:
        raise ValueError("give the text per language, e.g. {en: ..., sv: ...}")
    normalised = {language_code(code): value for code, value in texts.items()}
    bad = sorted(code for code in texts if not _LANGUAGE_CODE.fullmatch(language_code(code)))
    if bad or len(normalised) < len(texts):
        raise ValueError(f"{', '.join(bad) or 'a language twice'}: use one language code per text, e.g. en or sv")
    survey = _SURVEY_BEING_VALIDATED.get()
    default = survey[1] if survey else None
    if default and not any(same_language(code, language_code(default)) for code in normalised):
        raise ValueError(f"needs a text in {default}, the survey's default_language (shown when the "
                         "respondent's language has none)")
    return normalised


class QuestionChoice(Strict):
    id: str = Field(description="Short name of the choice, [a-z0-9_], unique in the question; stored as the "
                    "answer, so keep it when the text changes.", json_schema_extra={"pattern": QUESTION_ID.pattern})
    text: dict[str, QuestionText] = Field(description="The choice per language, e.g. {en: By phone, sv: Per "
                                          "telefon}; must include the survey's default_language.")

    @field_validator("id")
    @classmethod
    def _id_is_short(cls, value: str) -> str:
        return _check_identifier(value, "choice id")

    @field_validator("text")
    @classmethod
    def _text_has_default_language(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_texts(value)


class QuestionConfig(Strict):
    """An extra question of a survey, asked on the survey page after the score."""

    id: str = Field(description="Short name, [a-z0-9_], unique in the survey; keys the stored answer.",
                    json_schema_extra={"pattern": QUESTION_ID.pattern})
    type: Literal["choice", "multi", "text", "yes_no"] = Field(
        description="choice: one of the choices (radio buttons); multi: any of them (check boxes); text: a "
                    "short free text (500 characters); yes_no: yes or no.")
    text: dict[str, QuestionText] = Field(description="The question per language, e.g. {en: ..., sv: ...}; must "
                                          "include the survey's default_language, shown when the respondent's "
                                          "language has no text.")
    choices: list[QuestionChoice] | None = Field(None, min_length=2, max_length=30, validate_default=True,
                                                 description="The answers offered; required for choice and "
                                                 "multi, not allowed otherwise.")
    bands: list[str] | None = Field(None, min_length=1, description="Ask only after a score in these bands "
                                    "(nps: detractor, passive, promoter; csat: dissatisfied, neutral, satisfied; "
                                    "ces: difficult, neutral, easy). Default: after every score.")
    required: bool = Field(False, description="The answer cannot be sent without it (when the question applies).")

    @field_validator("id")
    @classmethod
    def _id_is_free(cls, value: str) -> str:
        _check_identifier(value, "id")
        if value in RESERVED_QUESTION_IDS:
            raise ValueError(f"{value} is used by the survey page itself; choose another id (not "
                             f"{', '.join(sorted(RESERVED_QUESTION_IDS))})")
        return value

    @field_validator("text")
    @classmethod
    def _text_has_default_language(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_texts(value)

    @field_validator("choices")
    @classmethod
    def _choices_fit_the_type(cls, value: list[QuestionChoice] | None,
                              info: ValidationInfo) -> list[QuestionChoice] | None:
        kind = info.data.get("type")
        if kind is None:  # the type is wrong, and reported already
            return value
        if kind in ("choice", "multi") and value is None:
            raise ValueError(f"required for type {kind}: list at least 2 choices, each with id and text")
        if kind not in ("choice", "multi") and value is not None:
            raise ValueError(f"only for types choice and multi, not {kind}")
        ids = [c.id for c in value or ()]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"choice id {', '.join(twice)} is used more than once")
        return value

    @field_validator("bands")
    @classmethod
    def _bands_exist(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        twice = sorted({b for b in value if value.count(b) > 1})
        if twice:
            raise ValueError(f"band {', '.join(twice)} is listed more than once")
        survey = _SURVEY_BEING_VALIDATED.get()
        kind = survey[0] if survey else None
        if kind is not None:
            known = [band for band, _, _ in SCALES[kind].bands]
            unknown = [b for b in value if b not in known]
            if unknown:
                raise ValueError(f"{', '.join(unknown)}: not a band of {kind}; use {', '.join(known)}")
        return value


class NativeSurvey(Strict):
    """Where a native survey's answers are (channel: native). Jira Service Management needs nothing: its
    Satisfaction field (1-5) is found by type."""

    metric: str = Field("Overall satisfaction", description="ServiceNow: the survey question (asmt_metric) whose "
                        "answer is the score, by name or sys_id.")
    comment_metric: str | None = Field("Comments", description="ServiceNow: the question whose text is the "
                                       "comment, by name or sys_id; null: none.")
    since: Duration = Field(timedelta(days=30), description="On the first run, collect answers this far back.")


class SurveyConfig(Strict):
    """One survey definition: what is asked, of whom, when and how."""

    kind: Literal["nps", "csat", "ces"] = Field(description="nps 0-10, csat 1-5, ces 1-7 (CES 2.0).")
    trigger: Literal["resolution", "follow_up_closed"] = Field(
        "resolution", description="resolution: one invitation per resolved ticket; follow_up_closed: a recovery "
        "survey, sent when the follow-up of an unhappy answer closes (no send_after, send_within or throttle).")
    channel: Literal["email", "comment", "webhook", "native"] = Field(
        "email", description="How invitations are delivered; native: the systems survey people themselves "
        "(JSM Satisfaction, ServiceNow surveys) and vloop collects the answers.")
    systems: list[str] | None = Field(None, description="Systems whose tickets get this survey; default all.")
    default_language: str = Field("en", description="Used when neither ticket nor person has a language we have "
                                  "texts for.")
    send_after: Duration = Field(timedelta(hours=1), description="Wait this long after resolution.")
    send_within: Duration = Field(timedelta(days=7), description="Never survey a resolution older than this.")
    expire_after: Duration = Field(timedelta(days=14), description="Links stop accepting answers after this.")
    remind_after: Duration | None = Field(timedelta(days=3), description="Remind unanswered invitations; null: never.")
    max_reminders: int = Field(1, ge=0, le=5)
    throttle: Duration = Field(timedelta(days=30), description="At most one survey per person in this period, "
                               "across all systems.")
    sample: float = Field(1.0, ge=0, le=1, description="Share of eligible resolutions surveyed (deterministic).")
    max_per_run: int | None = Field(None, ge=1, description="Ceiling of invitations sent per run; the rest wait.")
    reasons: bool = Field(True, description="Ask what mattered most, with choices by score band.")
    comment: bool = Field(True, description="Offer a free-text comment.")
    questions: list[QuestionConfig] = Field(default_factory=list, max_length=20, description="Extra questions, "
                                            "asked after the score (and the reasons) and before the comment.")
    exclude: SurveyExclusions = SurveyExclusions()
    native: NativeSurvey = NativeSurvey()

    @model_validator(mode="wrap")
    @classmethod
    def _questions_know_their_survey(cls, data: Any, handler: ModelWrapValidatorHandler[SurveyConfig]) -> SurveyConfig:
        """Questions check their bands against this survey's kind and their texts against its default_language."""
        raw = data if isinstance(data, dict) else {}
        kind, language = raw.get("kind"), raw.get("default_language", "en")
        survey = (kind if isinstance(kind, str) and kind in SCALES else None,
                  language if isinstance(language, str) and language else None)
        token = _SURVEY_BEING_VALIDATED.set(survey)
        try:
            return handler(data)
        finally:
            _SURVEY_BEING_VALIDATED.reset(token)

    @field_validator("questions")
    @classmethod
    def _question_ids_are_unique(cls, value: list[QuestionConfig]) -> list[QuestionConfig]:
        ids = [q.id for q in value]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"id {', '.join(twice)} is used by more than one question")
        return value


class SmtpOptions(Strict):
    host: str = Field("localhost", description="SMTP relay host.")
    port: int = Field(25, ge=1, le=65535)
    security: Literal["plain", "starttls", "ssl"] = Field("plain", description="plain (a relay on this host), "
                                                         "starttls (port 587) or ssl (port 465).")
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = Field(30.0, gt=0, description="Seconds per SMTP command.")
    ca_bundle: str | None = Field(None, description="PEM file of CAs to trust for the relay's certificate.")


class EmailChannel(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    smtp: SmtpOptions = SmtpOptions()
    sender: str = Field(alias="from", description='From address, e.g. "Service Desk <desk@example.com>".')
    domain: str | None = Field(None, description="Message-ID domain; default: the From address's domain.")
    batch_size: int = Field(500, ge=1, le=10000, description="Invitations sent over one SMTP connection.")
    bounce_maildir: str | None = Field(None, description="Maildir that receives the bounce reports (RFC 3464) "
                                       "mailed to the From address; each run reads the new ones.")


class WebhookChannel(Strict):
    url: AnyHttpUrl = Field(description="Receives one JSON POST per invitation and reminder.")
    secret: SecretStr = Field(description="Key of the X-Vloop-Signature HMAC-SHA256 header (32+ characters).")
    http: HttpOptions = HttpOptions()


class Channels(Strict):
    email: EmailChannel | None = Field(None, description="Needed by surveys with channel: email.")
    webhook: WebhookChannel | None = Field(None, description="Needed by surveys with channel: webhook.")


class PageOptions(Strict):
    """The survey page (`vloop serve`)."""

    rate_limit_per_ip: int = Field(60, ge=1, description="Requests per minute from one address to survey and "
                                   "opt-out links. Behind a company NAT many respondents share one address.")
    rate_limit_per_link: int = Field(10, ge=1, description="Requests per minute to one survey link.")
    trusted_proxies: int = Field(0, ge=0, le=5, description="Reverse proxies in front of the page that set "
                                 "X-Forwarded-For; the rate limit then counts the client's address. 0: the page "
                                 "is reached directly, and forwarded headers are ignored. Only set it when the page "
                                 "cannot be reached except through those proxies.")
    optout_valid_for: Duration = Field(timedelta(days=365), description="Opt-out links keep working this long, "
                                       "well after the survey itself closed.")


class AnalyticsOptions(Strict):
    themes: str | None = Field(None, description="Theme taxonomy YAML (relative to this file); default the "
                               "shipped ITSM taxonomy.")


# The values a rule over one answer can use (connector/loop/inner.py fills them in).
RESPONSE_SYMBOLS: dict[str, ValueType] = {
    "score": "number", "nps": "number", "csat": "number", "ces": "number", "band": "text", "kind": "text",
    "sentiment": "text", "sentiment_score": "number", "themes": "list", "has_comment": "bool", "survey": "text",
    "system": "text", "source": "text",
}


class InnerLoop(Strict):
    """Follow-ups for unhappy customers, created in the ticket's own system and tracked to closure."""

    detractor: str = Field("nps <= 6 or csat <= 2 or ces <= 3", description="Which answers get a follow-up: "
                           "an expression over score, band, nps, csat, ces, sentiment, themes, survey, system.")
    due_in: Duration = Field(timedelta(days=2), description="Due date of a follow-up, after the answer.")
    within: Duration = Field(timedelta(days=14), description="Only answers this recent get a follow-up (a first "
                             "run does not open one for every old complaint).")
    surveys: list[str] | None = Field(None, description="Surveys whose answers are considered; default all.")
    close_message: bool = Field(False, description="When a follow-up closes, tell the customer their feedback "
                                "was followed up: by email (channels.email) when they have an address, else as a "
                                "comment on the ticket.")
    flag_new_tickets: Duration | None = Field(
        None, description="Put an internal note on a new open ticket of someone whose unhappy answer is this "
        "recent (or whose follow-up is still open), so the agent knows; null: off.")

    @field_validator("detractor")
    @classmethod
    def _rule_compiles(cls, value: str) -> str:
        compile_expression(value, RESPONSE_SYMBOLS)  # ExpressionError is a ValueError: reported with the key
        return value


class Config(Strict):
    """The whole `vloop.yaml`."""

    state: str = Field("sqlite:///vloop.db", description="SQLAlchemy URL of the state store.")
    secret_key: SecretStr | list[SecretStr] | None = Field(
        None, description="Signs survey links (32+ characters); a list rotates keys: the first signs, all verify.")
    public_url: AnyHttpUrl | None = Field(None, description="Base URL of the survey page, used in links.")
    systems: dict[str, SystemConfig] = Field(description="Configured ITSM endpoints by name.")
    surveys: dict[str, SurveyConfig] = Field(default_factory=dict, description="Survey definitions by name.")
    channels: Channels = Channels()
    page: PageOptions = PageOptions()
    analytics: AnalyticsOptions = AnalyticsOptions()
    inner_loop: InnerLoop | None = Field(None, description="Follow-ups for detractors; none: off.")
    log: LogOptions = LogOptions()

    @model_validator(mode="after")
    def _surveys_are_complete(self) -> Config:
        for name, survey in self.surveys.items():
            unknown = sorted(set(survey.systems or ()) - set(self.systems))
            if unknown:
                raise ValueError(f"surveys.{name}.systems: no system named {', '.join(unknown)}")
            jira = sorted(n for n in survey.systems or self.systems if self.systems[n].kind == "jira")
            if survey.channel == "native" and jira and survey.kind != "csat":
                raise ValueError(f"surveys.{name}.kind: a native survey of Jira ({', '.join(jira)}) collects "
                                 "JSM Satisfaction ratings (1-5): use kind csat")
        recovery = sorted(n for n, sv in self.surveys.items() if sv.trigger == "follow_up_closed")
        if recovery and self.inner_loop is None:
            raise ValueError(f"surveys {', '.join(recovery)} follow closed follow-ups: configure inner_loop")
        if any(self.surveys[n].channel == "native" for n in recovery):
            raise ValueError("a recovery survey (trigger: follow_up_closed) cannot be native: vloop sends it")
        emailed = sorted(n for n, sv in self.surveys.items() if sv.channel == "email")
        if emailed and self.channels.email is None:
            raise ValueError(f"surveys {', '.join(emailed)} send email: configure channels.email (smtp, from)")
        hooked = sorted(n for n, sv in self.surveys.items() if sv.channel == "webhook")
        if hooked and self.channels.webhook is None:
            raise ValueError(f"surveys {', '.join(hooked)} use a webhook: configure channels.webhook (url, secret)")
        webhook_secret = self.channels.webhook.secret.get_secret_value() if self.channels.webhook else None
        if webhook_secret and len(webhook_secret) < 32:  # empty: the missing secret is reported already
            raise ValueError("channels.webhook.secret: at least 32 characters")
        outbound = [n for n, sv in self.surveys.items() if sv.channel != "native"]
        if outbound and (self.secret_key is None or self.public_url is None):
            raise ValueError("surveys need secret_key (to sign links) and public_url (the survey page)")
        keys = self.secret_key if isinstance(self.secret_key, list) else [self.secret_key] if self.secret_key else []
        if any(len(k.get_secret_value()) < 32 for k in keys):
            raise ValueError("secret_key: each key needs at least 32 characters (e.g. `openssl rand -hex 32`)")
        return self

    def secret_keys(self) -> list[str]:
        keys = self.secret_key if isinstance(self.secret_key, list) else [self.secret_key] if self.secret_key else []
        return [k.get_secret_value() for k in keys]


def config_schema() -> dict[str, Any]:
    """JSON Schema of the config file, for editors (`vloop schema`)."""
    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Virtuous Loop configuration"
    return schema


@dataclass(frozen=True)
class Loaded:
    """A validated config with its mappings, ready to run."""

    path: Path
    config: Config
    mappings: dict[str, Any] = field(default_factory=dict)  # system name -> connector.mapping.Mapping

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def _walk_strings(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, str, Any, str | int]]:
    """Yield (path, value, parent, key) for every string in nested dicts and lists."""
    items: Any = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        if isinstance(value, str):
            yield (*path, key), value, data, key
        else:
            yield from _walk_strings(value, (*path, key))


def resolve_secrets(doc: YamlDoc, base_dir: Path, env: dict[str, str]) -> list[ConfigProblem]:
    """Expand `${ENV}` everywhere and `file:` on secret keys, in place; register secret values."""
    problems: list[ConfigProblem] = []
    for path, value, parent, key in list(_walk_strings(doc.data)):
        missing: list[str] = []

        def expand(match: re.Match[str], missing: list[str] = missing) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            missing.append(name)
            return ""

        expanded = _ENV_REF.sub(expand, value)
        for name in missing:
            problems.append(doc.problem(path, f"environment variable {name} is not set"))
        is_secret = str(key) in SECRET_KEYS
        if is_secret and expanded.startswith("file:"):
            secret_path = Path(expanded[5:]).expanduser()
            if not secret_path.is_absolute():
                secret_path = base_dir / secret_path
            try:
                expanded = secret_path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(doc.problem(path, f"cannot read secret file {secret_path}: {exc.strerror}"))
                continue
        if is_secret:
            register_secret(expanded)
        parent[key] = expanded
    return problems


def validation_problems(doc: YamlDoc, exc: ValidationError, prefix: PathKey = ()) -> list[ConfigProblem]:
    """Turn pydantic errors into `file:line: key.path: message` problems."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc: list[str | int] = []
        for part in err["loc"]:
            # Discriminated unions add the tag (e.g. "servicenow", "basic") to the location; drop it.
            if isinstance(part, str) and part in {"servicenow", "jira", "basic", "oauth", "jira_token", "bearer"}:
                continue
            loc.append(part)
        path = (*prefix, *loc)
        problems.append(doc.problem(path, _message(err)))
    return problems


def _message(err: Any) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown kind; expected one of {err.get('ctx', {}).get('expected_tags', '')}".rstrip("; ")
    return str(msg).removeprefix("Value error, ")


def find_config(explicit: str | None, env: dict[str, str]) -> Path:
    """`-c FILE`, else `$VLOOP_CONFIG`, else `./vloop.yaml` (the CLI contract)."""
    return Path(explicit or env.get("VLOOP_CONFIG") or "vloop.yaml")


def load(path: Path, env: dict[str, str] | None = None) -> Loaded:
    """Load, resolve secrets, validate config and every mapping; raise ConfigError with all problems."""
    from connector.mapping import load_mapping

    env = dict(os.environ) if env is None else env
    doc = load_yaml(path)
    problems = resolve_secrets(doc, path.parent, env)
    config: Config | None = None
    try:
        config = Config.model_validate(doc.data)
    except ValidationError as exc:
        problems += validation_problems(doc, exc)
    mappings: dict[str, Any] = {}
    systems = doc.data.get("systems") if isinstance(doc.data, dict) else None
    if isinstance(systems, dict):
        for name, raw in systems.items():
            if not isinstance(raw, dict) or not isinstance(raw.get("mapping"), str):
                continue
            kind = raw.get("kind")
            try:
                mappings[name] = load_mapping(raw["mapping"], path.parent, expect_kind=kind)
            except ConfigError as exc:
                problems += [_relocate(p, doc, ("systems", name, "mapping")) for p in exc.problems]
    themes = config.analytics.themes if config is not None else None
    if themes:
        from connector.analytics.themes import load_taxonomy

        try:
            load_taxonomy(path.parent / themes)
        except ConfigError as exc:
            problems += [_relocate(p, doc, ("analytics", "themes")) for p in exc.problems]
    if problems or config is None:
        raise ConfigError(problems)
    _register_url_passwords(config)
    return Loaded(path=path, config=config, mappings=mappings)


def _register_url_passwords(config: Config) -> None:
    """Passwords inside URLs (state store, proxies) are secrets too."""
    from urllib.parse import urlsplit

    urls = [config.state] + [s.http.proxy for s in config.systems.values() if s.http.proxy]
    for url in urls:
        try:
            register_secret(urlsplit(url).password)
        except ValueError:
            continue


def _relocate(problem: ConfigProblem, doc: YamlDoc, path: PathKey) -> ConfigProblem:
    """A missing mapping file is the config's problem: point at the `mapping:` line."""
    if problem.path == "" and problem.line is None and "cannot read" in problem.message:
        return doc.problem(path, problem.message.replace("cannot read file", f"cannot read mapping {problem.file}"))
    return problem
