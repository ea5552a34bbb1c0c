"""Configuration: a TOML file plus CORRLOG_* environment overrides, read once at the edge."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from corrlog.durations import parse_duration
from corrlog.errors import ConfigError

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


def _xdg_home(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable) or str(Path.home() / fallback)
    return Path(base) / "corrlog"


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/corrlog`, else `~/.local/share/corrlog`."""
    return _xdg_home("XDG_DATA_HOME", ".local/share")


def default_config_path() -> Path:
    """`$XDG_CONFIG_HOME/corrlog/corrlog.toml`, else `~/.config/corrlog/corrlog.toml`."""
    return _xdg_home("XDG_CONFIG_HOME", ".config") / "corrlog.toml"


class NotesSettings(BaseModel):
    """The `[notes]` table: folders of Markdown/plain-text notes."""

    model_config = ConfigDict(extra="forbid")

    paths: PathList | None = None


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


def resolve_config_path(explicit: str | Path | None, environ: Mapping[str, str]) -> Path:
    """Pick the config file: `--config`, else `$CORRLOG_CONFIG`, else the XDG default."""
    if explicit:
        return Path(explicit).expanduser()
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    return default_config_path()


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
        raise ConfigError(f"invalid config {origin}: {_describe(exc)}") from None
    except SettingsError as exc:
        raise ConfigError(f"invalid config (CORRLOG_* environment): {exc}") from None
    return Settings.model_validate(loaded.model_dump())


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see config/corrlog.example.toml)"
        parts.append(f"{key}: {message}")
    return "; ".join(parts)
