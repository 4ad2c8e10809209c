"""Find, parse and validate the configuration, turning every problem into one readable ConfigError.

A broken file or a wrongly typed key must stop the broadcaster at start-up naming the file (or the
environment variable), the key and the problem, never at send time in the middle of an incident."""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, get_args, get_origin

from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from config.references import MissingVariable, resolve_references
from config.secrets import mask_urls_in
from config.settings import CHANNEL_NAMES, Settings, file_values

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
    referenced = set(_references(data))
    _refuse_misspelt_variables(os.environ, source="environment variable", referenced=referenced)
    _refuse_misspelt_variables(_dotenv_names(), source=".env: variable", referenced=referenced)
    try:
        data = resolve_references(Settings, data, os.environ)
    except MissingVariable as exc:
        raise ConfigError(f"{path}: {exc}") from None
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
            raise ConfigError(f"{path}: unknown section [{name}]{did_you_mean(name, known)}")


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """ " (did you mean 'nearest'?)" for a typo of one of `candidates`, "" when none is close: the one wording
    of a suggestion, for configuration keys and sections, environment variables and the CLI's values."""
    # A word that begins exactly one candidate ("degraded" for "degraded_performance") is a clearer hint
    # than whichever is nearest by edits.
    starting = [c for c in candidates if c.casefold().startswith(word.casefold())] if word else []
    close = starting if len(starting) == 1 else difflib.get_close_matches(word, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _refuse_misspelt_variables(names: Iterable[str], *, source: str, referenced: set[str]) -> None:
    """A BROADCASTER_ variable meant for a setting that names none is an error, as a misspelt key in the file
    is: ignored, it would be a password or a directory silently not applied. `source` says where the names
    were set ("environment variable", ".env: variable"). Meant for a setting: a name with two underscores
    (the nesting delimiter) whose section or key does not exist, or one nearly equal to a real variable's
    name (BROADCASTER_EMAIL_PASSWORD). Everything else is someone else's and left alone: what Kubernetes
    sets for a Service named broadcaster or broadcaster-mirror (BROADCASTER_SERVICE_HOST,
    BROADCASTER_MIRROR_PORT_80_TCP_ADDR, even BROADCASTER_EMAIL_PORT for a Service "broadcaster-email"), a
    deployment's own BROADCASTER_TOKEN, a test's BROADCASTER_TEST_GATE, a name the file refers to as
    ${NAME}, and BROADCASTER_CONFIG."""
    valid = _variable_names()
    known = {CONFIG_ENV, *valid}
    for name in sorted(names):
        upper = name.upper()
        if not upper.startswith(_ENV_PREFIX) or upper in known or name in referenced:
            continue
        rest = upper.removeprefix(_ENV_PREFIX)
        if "__" in rest:
            if _is_setting(rest.lower().split("__")):
                continue  # below a known key (a list's JSON, say): pydantic names what is wrong itself
            hint = did_you_mean(upper, valid)
        elif _SERVICE_LINK.fullmatch(upper) or not (nearest := _nearly(rest, valid)):
            continue
        else:
            hint = f" (did you mean {nearest!r}?)"
        raise ConfigError(
            f"{source} {name}: no such setting{hint}; "
            f"settings are {_ENV_PREFIX}<SECTION>__<KEY>, two underscores between section and key"
        )


# What Kubernetes gives a pod for each Service in its namespace (SERVICE-NAME upper-cased, "-" as "_"):
# <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT[_<PORT-NAME>], <NAME>_PORT and
# <NAME>_PORT_<N>_<PROTOCOL>[_PROTO|_PORT|_ADDR].
_SERVICE_LINK = re.compile(
    r"BROADCASTER(?:_\w+?)?_(?:SERVICE_HOST|SERVICE_PORT(?:_\w+)?|PORT(?:_\d+_(?:TCP|UDP|SCTP)(?:_PROTO|_PORT|_ADDR)?)?)"
)
_NEARLY: Final = 0.85
"""How alike (difflib's ratio, after BROADCASTER_) a name must be to a real variable's to be taken for a typo
of it: EMAIL_PASSWORD for EMAIL__PASSWORD is 0.97, TOKEN for STORE 0.6, AUTH_TOKEN for AUTH__API_TOKENS 0.77."""


def _nearly(rest: str, valid: Sequence[str]) -> str | None:
    """The real variable whose name (after BROADCASTER_) `rest` is nearly equal to, if any."""
    matcher = difflib.SequenceMatcher(b=rest)
    best, likeness = None, 0.0
    for name in valid:
        matcher.set_seq1(name.removeprefix(_ENV_PREFIX))
        if matcher.ratio() > likeness:
            best, likeness = name, matcher.ratio()
    return best if likeness >= _NEARLY else None


def _is_setting(parts: Sequence[str]) -> bool:
    """Whether <SECTION>__<KEY>... (lower-cased) leads through existing sections and keys; a table of tables
    ([retry.<channel>], [templates]) takes any name at its level (the settings' own checks refuse a wrong one)."""
    annotation: Any = Settings
    for part in parts:
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
            continue
        model = _model_in(annotation)
        if model is None:
            return True
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
    return True


def _variable_names() -> list[str]:
    """Every BROADCASTER_<SECTION>__<KEY> there is (and each section's own name, for one given as JSON), with
    [retry.<channel>]'s as BROADCASTER_RETRY__<CHANNEL>__<KEY>."""
    names = []
    for section, field in Settings.model_fields.items():
        base = f"{_ENV_PREFIX}{section}".upper()
        names.append(base)
        model = _model_in(field.annotation)
        keys = list(model.model_fields if model else ())
        tables = [base]
        if get_origin(field.annotation) is dict:
            tables = [f"{base}__{channel}".upper() for channel in CHANNEL_NAMES] if keys else []
            names += tables
        names += [f"{table}__{key}".upper() for table in tables for key in keys]
        if model is not None:  # a section within a section ([drill.x]): its keys too, so a typo there is
            for key, inner in model.model_fields.items():  # not steered to the outer section's namesake
                nested = _model_in(inner.annotation)
                if nested is not None:
                    names += [f"{base}__{key}__{leaf}".upper() for leaf in nested.model_fields]
    return names


def _dotenv_names() -> list[str]:
    """The names set in the .env file Settings reads (in the working directory), if there is one."""
    path = Path(str(Settings.model_config.get("env_file") or ""))
    return list(dotenv_values(path)) if path.name and path.is_file() else []


_REFERENCE = re.compile(r"\$\{(\w+)\}")


def _references(value: Any) -> Iterator[str]:
    """The names of the environment variables the file refers to as ${NAME}, anywhere in it."""
    if isinstance(value, str):
        yield from _REFERENCE.findall(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _describe(exc: ValidationError, path: Path | None) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        env_name = _ENV_PREFIX + "__".join(str(part) for part in loc).upper()
        source = f"environment variable {env_name}" if env_name in os.environ else str(path or "defaults")
        message = mask_urls_in(error["msg"].removeprefix("Value error, "))
        if error["type"] == "extra_forbidden":
            message = "unknown key" + did_you_mean(str(loc[-1]), _siblings(loc))
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
