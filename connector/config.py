"""Load and validate the configuration and its mappings, reporting every problem at once.

Secrets come from `${ENV}` references (anywhere in a string) or `file:/path` values (on secret keys);
each resolved secret is registered for redaction before anything can log it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
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
    SecretStr,
    Tag,
    ValidationError,
    model_validator,
)

from connector.errors import ConfigError, ConfigProblem
from connector.redact import register_secret
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


class ServiceNowSystem(Strict):
    kind: Literal["servicenow"]
    url: AnyHttpUrl
    auth: ServiceNowAuth
    mapping: str = Field(description="Mapping file, relative to this config file or a bundled mapping name.")
    query: str | None = Field(None, description="Extra encoded query ANDed to the mapping's resolved query.")
    enabled: bool = True
    http: HttpOptions = HttpOptions()
    pull: PullOptions = PullOptions()


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


class SurveyConfig(Strict):
    """One survey definition: what is asked, of whom, when and how."""

    kind: Literal["nps", "csat", "ces"] = Field(description="nps 0-10, csat 1-5, ces 1-7 (CES 2.0).")
    channel: Literal["email", "comment", "webhook"] = Field("email", description="How invitations are delivered.")
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
    exclude: SurveyExclusions = SurveyExclusions()


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


class WebhookChannel(Strict):
    url: AnyHttpUrl = Field(description="Receives one JSON POST per invitation and reminder.")
    secret: SecretStr = Field(description="Key of the X-Vloop-Signature HMAC-SHA256 header (32+ characters).")
    http: HttpOptions = HttpOptions()


class Channels(Strict):
    email: EmailChannel | None = Field(None, description="Needed by surveys with channel: email.")
    webhook: WebhookChannel | None = Field(None, description="Needed by surveys with channel: webhook.")


class Config(Strict):
    """The whole `vloop.yaml`."""

    state: str = Field("sqlite:///vloop.db", description="SQLAlchemy URL of the state store.")
    secret_key: SecretStr | list[SecretStr] | None = Field(
        None, description="Signs survey links (32+ characters); a list rotates keys: the first signs, all verify.")
    public_url: AnyHttpUrl | None = Field(None, description="Base URL of the survey page, used in links.")
    systems: dict[str, SystemConfig] = Field(description="Configured ITSM endpoints by name.")
    surveys: dict[str, SurveyConfig] = Field(default_factory=dict, description="Survey definitions by name.")
    channels: Channels = Channels()
    log: LogOptions = LogOptions()

    @model_validator(mode="after")
    def _surveys_are_complete(self) -> Config:
        for name, survey in self.surveys.items():
            unknown = sorted(set(survey.systems or ()) - set(self.systems))
            if unknown:
                raise ValueError(f"surveys.{name}.systems: no system named {', '.join(unknown)}")
        emailed = sorted(n for n, sv in self.surveys.items() if sv.channel == "email")
        if emailed and self.channels.email is None:
            raise ValueError(f"surveys {', '.join(emailed)} send email: configure channels.email (smtp, from)")
        hooked = sorted(n for n, sv in self.surveys.items() if sv.channel == "webhook")
        if hooked and self.channels.webhook is None:
            raise ValueError(f"surveys {', '.join(hooked)} use a webhook: configure channels.webhook (url, secret)")
        webhook_secret = self.channels.webhook.secret.get_secret_value() if self.channels.webhook else None
        if webhook_secret and len(webhook_secret) < 32:  # empty: the missing secret is reported already
            raise ValueError("channels.webhook.secret: at least 32 characters")
        if self.surveys and (self.secret_key is None or self.public_url is None):
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
