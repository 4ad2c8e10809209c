"""Find, parse and validate the configuration, turning every problem into one readable ConfigError.

A broken file or a wrongly typed key must stop the broadcaster at start-up naming the file (or the
environment variable), the key and the problem, never at send time in the middle of an incident."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from config.settings import Settings, file_values

CONFIG_ENV = "BROADCASTER_CONFIG"
DEFAULT_CONFIG = Path("broadcaster.toml")
_ENV_PREFIX = "BROADCASTER_"
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
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key" + _suggest(str(loc[-1]), _siblings(loc))
        elif not _is_secret(loc) and isinstance(error.get("input"), str | int | float | bool):
            message += f" (got {error['input']!r})"
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
