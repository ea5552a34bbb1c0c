"""Configuration: a TOML file plus CORRLOG_* environment overrides, read once at the edge."""

from __future__ import annotations

import json
import os
import shlex
import tomllib
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from corrlog.durations import parse_duration
from corrlog.errors import ConfigError, UsageError

CONFIG_ENV = "CORRLOG_CONFIG"


def _duration(value: object) -> object:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError('write a duration as a string with a unit, like "7d", "12h" or "2w"')


def _expand_path(value: object) -> object:
    if isinstance(value, str | Path):
        path = Path(value).expanduser()
        if not path.is_absolute():
            raise ValueError(
                f"{str(value)!r} is relative; use an absolute path or one starting with ~"
            )
        return path
    return value


def _split_list(value: object) -> object:
    """Accept `a, b` as well as a list (environment variables are plain strings)."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list: {exc.msg}") from None
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
AbsPath = Annotated[Path, BeforeValidator(_expand_path)]
PathList = Annotated[list[AbsPath], NoDecode, BeforeValidator(_split_list)]
StrList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]


def _xdg_home(variable: str, fallback: str, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get(variable) or str(Path.home() / fallback)
    return Path(base) / "corrlog"


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/corrlog`, else `~/.local/share/corrlog`."""
    return _xdg_home("XDG_DATA_HOME", ".local/share")


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/corrlog/corrlog.toml`, else `~/.config/corrlog/corrlog.toml`."""
    return _xdg_home("XDG_CONFIG_HOME", ".config", environ) / "corrlog.toml"


class NotesSettings(BaseModel):
    """The `[notes]` table: folders of Markdown/plain-text notes."""

    model_config = ConfigDict(extra="forbid")

    paths: PathList | None = None


_LOOPBACK = ("localhost", "127.0.0.1", "::1", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this machine."""
    return host in _LOOPBACK or host.startswith("127.")


def _command(value: object) -> object:
    """A command is a list of arguments, or a string split like a shell would (never run by one)."""
    if isinstance(value, str):
        return shlex.split(value)
    return value


Command = Annotated[list[str], BeforeValidator(_command)]


class ImapAccount(BaseModel):
    """One `[[imap]]` account."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[\w.@-]+$")
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: AbsPath | None = None
    password_command: Command | None = None
    oauth2_token_command: Command | None = None
    ca_file: AbsPath | None = None
    folders: list[str] | None = None
    batch_size: int = Field(default=100, ge=1, le=5000)
    timeout: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ImapAccount:
        given = [
            k
            for k in ("password", "password_file", "password_command", "oauth2_token_command")
            if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of password, password_file, password_command, oauth2_token_command"
                + (f" (found {', '.join(given)})" if given else "")
            )
        if self.tls == "none" and not is_loopback(self.host):
            raise ValueError(
                f'tls = "none" sends the password in clear; only allowed for a loopback host, not {self.host}'
            )
        return self

    @property
    def effective_port(self) -> int:
        """The configured port, else 993 for implicit TLS and 143 otherwise."""
        return self.port or (993 if self.tls == "implicit" else 143)


class MaildirSource(BaseModel):
    """One `[[maildir]]` source: a Maildir, or a tree of them (mbsync/OfflineIMAP layout)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[\w.@-]+$")
    path: AbsPath


class MilestoneConfig(BaseModel):
    """A milestone inside a `[[contracts]]` table."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = ""
    amount: float | None = None
    currency: str | None = None
    due: date | None = None
    escrow: Literal["unfunded", "funded", "released", "refunded"] = "unfunded"
    status: Literal["open", "submitted", "approved", "paid"] = "open"
    since: date | None = None


class ContractConfig(BaseModel):
    """A `[[contracts]]` table: the same keys as an agreement note's front matter."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    client: str = Field(min_length=1)
    title: str = ""
    emails: StrList = Field(default_factory=list)
    interval: Duration | None = None
    start: date | None = None
    status: Literal["active", "paused", "completed", "cancelled"] = "active"
    milestones: list[MilestoneConfig] = Field(default_factory=list)


class DaemonSettings(BaseModel):
    """The `[daemon]` table: how often `corrlog run` polls, checks flags and debounces."""

    model_config = ConfigDict(extra="forbid")

    poll_interval: Duration = timedelta(minutes=5)
    check_interval: Duration = timedelta(minutes=15)
    idle_refresh: Duration = timedelta(minutes=20)
    debounce: float = Field(default=0.5, ge=0.0, le=60.0)

    @model_validator(mode="after")
    def _check(self) -> DaemonSettings:
        if self.idle_refresh >= timedelta(minutes=29):
            raise ValueError(
                "idle_refresh must be under 29m (RFC 2177: servers drop IDLE after 30m)"
            )
        return self


class IndexSettings(BaseModel):
    """The `[index]` table: which search engine keeps the index."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["whoosh", "tantivy"] = "whoosh"


class FlagsSettings(BaseModel):
    """The `[flags]` table: thresholds and how often an open flag is notified again."""

    model_config = ConfigDict(extra="forbid")

    client_silence: Duration = timedelta(days=14)
    payment_wait: Duration = timedelta(days=14)
    due_soon: Duration = timedelta(days=3)
    renotify: Duration = timedelta(days=3)


class ClassifySettings(BaseModel):
    """The `[classify]` table: regex patterns that replace the built-in ones."""

    model_config = ConfigDict(extra="forbid")

    agreement: list[str] | None = None
    update: list[str] | None = None


class EmailNotifier(BaseModel):
    """The `[notify.email]` table: SMTP delivery of flags and digests."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    tls: Literal["implicit", "starttls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    password_file: AbsPath | None = None
    password_command: Command | None = None
    ca_file: AbsPath | None = None
    sender: str = Field(alias="from", min_length=3)
    to: StrList = Field(min_length=1)
    timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> EmailNotifier:
        secrets = [k for k in ("password", "password_file", "password_command") if getattr(self, k)]
        if len(secrets) > 1:
            raise ValueError("give at most one of password, password_file, password_command")
        if secrets and not self.username:
            raise ValueError("a password needs a username")
        if self.tls == "none" and not is_loopback(self.host):
            raise ValueError(f'tls = "none" is only allowed for a loopback host, not {self.host}')
        return self

    @property
    def effective_port(self) -> int:
        """The configured port, else 465 for implicit TLS and 587 otherwise."""
        return self.port or (465 if self.tls == "implicit" else 587)


class CommandNotifier(BaseModel):
    """The `[notify.command]` table: a program that gets each flag as JSON on stdin."""

    model_config = ConfigDict(extra="forbid")

    command: Command = Field(min_length=1)
    timeout: float = Field(default=30.0, gt=0)


class NotifySettings(BaseModel):
    """The `[notify]` table; the log notifier is always on."""

    model_config = ConfigDict(extra="forbid")

    email: EmailNotifier | None = None
    command: CommandNotifier | None = None


class Settings(BaseSettings):
    """Everything corrlog reads from its configuration."""

    model_config = SettingsConfigDict(
        env_prefix="CORRLOG_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="forbid",
    )

    data_dir: AbsPath = Field(default_factory=default_data_dir)
    me: StrList = Field(default_factory=list)
    default_interval: Duration = timedelta(days=7)
    capture: Literal["clients", "all"] = "clients"
    notes: NotesSettings = Field(default_factory=NotesSettings)
    imap: list[ImapAccount] = Field(default_factory=list)
    maildir: list[MaildirSource] | None = None
    contracts: list[ContractConfig] = Field(default_factory=list)
    flags: FlagsSettings = Field(default_factory=FlagsSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    classify: ClassifySettings = Field(default_factory=ClassifySettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    index: IndexSettings = Field(default_factory=IndexSettings)

    @property
    def maildir_sources(self) -> list[MaildirSource]:
        """The Maildir sources; a `maildir` folder under the data dir when none are configured."""
        if self.maildir is None:
            return [MaildirSource(name="local", path=self.data_dir / "maildir")]
        return list(self.maildir)

    @property
    def notes_paths(self) -> list[Path]:
        """The notes folders; a `notes` folder under the data dir when none are configured."""
        if self.notes.paths is None:
            return [self.data_dir / "notes"]
        return list(self.notes.paths)

    @property
    def my_addresses(self) -> frozenset[str]:
        """The freelancer's own addresses, lower-cased."""
        return frozenset(a.strip().lower() for a in self.me if a.strip())

    def check_source(self, name: str | None) -> None:
        """Refuse a `--source` that names no configured source (UsageError listing them)."""
        names = {"notes", *(m.name for m in self.maildir_sources), *(a.name for a in self.imap)}
        if name and name not in names:
            raise UsageError(f"no source named {name!r}; configured: {', '.join(sorted(names))}")


def resolve_config_path(explicit: str | Path | None, environ: Mapping[str, str]) -> Path:
    """Pick the config file: `--config`, else `$CORRLOG_CONFIG`, else the XDG default."""
    if explicit:
        return Path(explicit).expanduser()
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    return default_config_path(environ)


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file is a ConfigError naming it."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"no config file at {path}; create one with 'corrlog --config {path} init'"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None


def load_settings(path: Path) -> Settings:
    """Load the TOML file at `path`, overlay CORRLOG_* variables, and validate."""
    data = read_toml(path)
    return settings_from_mapping(data, origin=str(path))


def settings_from_mapping(data: Mapping[str, Any], *, origin: str = "config") -> Settings:
    """Validate settings given as a mapping (file values), with CORRLOG_* env on top."""

    class _FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            file_source = InitSettingsSource(settings_cls, init_kwargs=dict(data))
            return (init_settings, env_settings, file_source)

    try:
        loaded = _FileSettings()
    except ValidationError as exc:
        raise ConfigError(f"invalid config {_blame(exc, origin)}: {_describe(exc)}") from None
    except SettingsError as exc:
        raise ConfigError(f"invalid config (CORRLOG_* environment): {exc}") from None
    return loaded


def _blame(exc: ValidationError, origin: str) -> str:
    """Name the environment variable when one supplied the bad value, else the file."""
    for error in exc.errors():
        variable = "CORRLOG_" + "__".join(str(p) for p in error["loc"]).upper()
        if os.environ.get(variable):
            return f"(environment variable {variable})"
    return origin


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see config/corrlog.example.toml)"
        parts.append(f"{key}: {message}")
    return "; ".join(parts)
