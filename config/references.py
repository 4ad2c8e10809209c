"""Secrets kept out of the config file: a secret-valued key (a SecretStr, or a URL field marked SecretUrl)
may be written as "${NAME}", and its value is then read from environment variable NAME when the settings
load. The file can be shared, copied to a laptop or checked in, and the secrets come from a password
manager into the environment. Only a whole value is a reference, and only for a secret-valued key:
"${NAME}" anywhere else is text like any other."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr

from config.secrets import SecretUrl

REFERENCE: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""A whole value naming an environment variable: "${NAME}"."""


class MissingVariable(ValueError):
    """A reference names an environment variable that is not set (or is empty)."""


def reference(name: str) -> str:
    """How a key refers to environment variable `name`."""
    return "${" + name + "}"


def resolve_references(model: type[BaseModel], data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """`data` (a parsed config file for `model`) with every secret-valued "${NAME}" replaced by the value of
    NAME in `environ`. Raises MissingVariable naming the variable and the key when NAME is unset or empty:
    an empty secret is a secret nobody filled in."""
    return _resolve_table(model, data, environ, where=())


def _resolve_table(
    model: type[BaseModel], data: Mapping[str, Any], environ: Mapping[str, str], *, where: tuple[str, ...]
) -> dict[str, Any]:
    resolved = dict(data)
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:  # an unknown key: the settings' own validation names it
            continue
        if _is_secret([*field.metadata, field.annotation]):
            resolved[key] = _resolve_values(value, environ, where=(*where, key))
        else:
            resolved[key] = _resolve_nested(field.annotation, value, environ, where=(*where, key))
    return resolved


def _resolve_nested(annotation: Any, value: Any, environ: Mapping[str, str], *, where: tuple[str, ...]) -> Any:
    """A value of a field that is no secret itself but may hold models that have some: a section, a list of
    tables ([[webhook.targets]]) or a table of tables ([retry.email]), as its annotation says."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _resolve_table(annotation, value, environ, where=where) if isinstance(value, Mapping) else value
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple) and args and isinstance(value, list):
        return [_resolve_nested(args[0], item, environ, where=(*where, str(n))) for n, item in enumerate(value)]
    if origin is dict and len(args) == 2 and isinstance(value, Mapping):
        return {key: _resolve_nested(args[1], item, environ, where=(*where, key)) for key, item in value.items()}
    models = [arg for arg in args if isinstance(arg, type) and issubclass(arg, BaseModel)]
    if models and isinstance(value, Mapping):
        # A union of tables ([[mirror.publish]]: s3, git or sftp) is resolved as the member it is, told by
        # its Literal keys (`kind`): the first member alone would leave another member's secrets literal.
        chosen = next((model for model in models if _fits(model, value)), None)
        return value if chosen is None else _resolve_table(chosen, value, environ, where=where)
    for arg in args:  # Optional[...], a union, or Annotated[...] (whose metadata changes nothing here)
        resolved = _resolve_nested(arg, value, environ, where=where)
        if resolved is not value:
            return resolved
    return value


def _fits(model: type[BaseModel], value: Mapping[str, Any]) -> bool:
    """True when every Literal-typed key of `model` (a union's discriminator) is given one of its values in
    `value` (or may be left out); a model with no such key fits any table."""
    for key, field in model.model_fields.items():
        if get_origin(field.annotation) is not Literal:
            continue
        if key in value and value[key] not in get_args(field.annotation):
            return False
        if key not in value and field.is_required():
            return False
    return True


def _resolve_values(value: Any, environ: Mapping[str, str], *, where: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        found = REFERENCE.fullmatch(value)
        if found is None:
            return value
        name = found[1]
        if not environ.get(name):
            state = "is empty" if name in environ else "is not set"
            raise MissingVariable(f"{key_name(where)} refers to environment variable {name}, which {state}")
        return environ[name]
    if isinstance(value, Mapping):
        return {key: _resolve_values(item, environ, where=(*where, str(key))) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_values(item, environ, where=(*where, str(n))) for n, item in enumerate(value)]
    return value


def key_name(where: tuple[str, ...]) -> str:
    """("webhook", "targets", "0", "secret") -> "[webhook] targets[0].secret"."""
    if len(where) < 2:
        return f"[{where[0]}]" if where else "(top level)"
    rest = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in where[1:]).lstrip(".")
    return f"[{where[0]}] {rest}"


def _is_secret(annotations: list[Any]) -> bool:
    """A SecretStr (alone, optional, or in a list or table) or a URL marked SecretUrl; not a model that
    merely holds secrets, whose own fields say which of them are."""
    for annotation in annotations:
        if annotation is SecretStr or isinstance(annotation, SecretUrl):
            return True
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)) and _is_secret(
            list(get_args(annotation))
        ):
            return True
    return False
