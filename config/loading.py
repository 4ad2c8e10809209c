"""Find, parse and validate the configuration, turning every problem into one readable ConfigError.

A broken file or a wrongly typed key must stop the broadcaster at start-up naming the file (or the
environment variable), the key and the problem, never at send time in the middle of an incident."""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from config.secrets import mask_urls_in
from config.settings import Settings, file_values

CONFIG_ENV = "BROADCASTER_CONFIG"
DEFAULT_CONFIG = Path("broadcaster.toml")
_ENV_PREFIX = "BROADCASTER_"
_SETTINGS_ERROR = re.compile(r'for field "(?P<field>\w+)" from source "(?P<source>\w+)"')
_SOURCES = {"EnvSettingsSource": "the environment", "DotEnvSettingsSource": ".env"}
# Values of keys named like this are never echoed back in an error (incoming-webhook URLs carry their
# secret in the path).
_SECRET_WORDS = ("secret", "password", "token", "key", "users", "url", "headers")


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


def resolve_config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """--config FILE, else $BROADCASTER_CONFIG, else ./broadcaster.toml if present, else None."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_settings(path: Path | None) -> Settings:
    """Build the settings from the file at `path` (None: defaults) and the environment."""
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_toml(path)
        _refuse_unknown_sections(path, data)
    try:
        with file_values(data):
            return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except SettingsError as exc:  # a list or table from the environment that is not valid JSON
        raise ConfigError(_unreadable_variable(exc)) from None


def _unreadable_variable(exc: SettingsError) -> str:
    """Which variable pydantic-settings could not decode (lists and tables come from the environment as
    JSON) and why, never its value: it may hold a secret (a webhook URL, a token)."""
    match = _SETTINGS_ERROR.search(str(exc))
    section, source = (match["field"], match["source"]) if match else ("", "")
    cause = exc.__cause__
    if not isinstance(cause, json.JSONDecodeError):
        return f"{_SOURCES.get(source, source)}: a value for [{section}] cannot be read"
    why = f"not valid JSON ({cause.msg}: line {cause.lineno} column {cause.colno})"
    if source == "DotEnvSettingsSource":
        return f".env: a value for [{section}] is {why}; the value is not shown, as it may hold a secret"
    # The JSON parser keeps the text it was given: the variable holding exactly that text is the one.
    names = sorted(
        name
        for name, value in os.environ.items()
        if value == cause.doc and re.fullmatch(rf"{_ENV_PREFIX}{re.escape(section)}(__\w+)?", name, re.IGNORECASE)
    )
    where = "environment variable " + " or ".join(names) if names else f"an environment variable for [{section}]"
    return f"{where} is {why}; the value is not shown, as it may hold a secret"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line L, column C)".
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _refuse_unknown_sections(path: Path, data: Mapping[str, Any]) -> None:
    known = list(Settings.model_fields)
    for name in data:
        if name not in known:
            raise ConfigError(f"{path}: unknown section [{name}]{_suggest(name, known)}")


def _suggest(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(exc: ValidationError, path: Path | None) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        env_name = _ENV_PREFIX + "__".join(str(part) for part in loc).upper()
        source = f"environment variable {env_name}" if env_name in os.environ else str(path or "defaults")
        message = mask_urls_in(error["msg"].removeprefix("Value error, "))
        if error["type"] == "extra_forbidden":
            message = "unknown key" + _suggest(str(loc[-1]), _siblings(loc))
        elif not _is_secret(loc) and isinstance(given := error.get("input"), str | int | float | bool):
            # Any string may be a URL with credentials, whatever its key: a plain list of webhook URLs
            # where tables belong ("targets = ['https://...']") is the usual mistake.
            message += f" (got {mask_urls_in(given) if isinstance(given, str) else given!r})"
        lines.append(f"{source}: {_key_name(loc)}: {message}")
    return "\n".join(lines)


def _key_name(loc: tuple[int | str, ...]) -> str:
    """("webhook", "targets", 1, "url") -> "[webhook] targets[1].url"."""
    if not loc:
        return "(top level)"
    rest = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:]).lstrip(".")
    return f"[{loc[0]}] {rest}".rstrip() if rest else f"[{loc[0]}]"


def _is_secret(loc: tuple[int | str, ...]) -> bool:
    return any(word in str(part) for part in loc for word in _SECRET_WORDS)


def _siblings(loc: tuple[int | str, ...]) -> list[str]:
    """The field names that were valid where an unknown key appeared."""
    model: type[BaseModel] | None = Settings
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field else None
    return list(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if found := _model_in(arg):
            return found
    return None
