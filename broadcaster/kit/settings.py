"""The kit's configuration: the effective settings (file, environment and defaults merged) as they must be
for a blackout on the laptop, with no secret in clear.

- The journal is the kit's snapshot (sqlite:///<DIR>/var/broadcaster.db, never Redis: Redis lives on the
  platform), the data directory is <DIR>/var and the mirror writes into <DIR>/public.
- Every channel setting is kept: relays, X, webhook targets, publish targets, drill targets, pins, retries.
- Each secret (a SecretStr, a URL marked SecretUrl that carries credentials) is written as "${NAME}", read
  from the environment when the settings load (config.references); NAME is listed in secrets.env.example.
- The subscribers file, the suppression file and the CA file are copied into the kit, as they are data a
  blackout send needs and no secret. A snapshot taken from a running service (--from) holds that service's
  subscribers file and suppression file (folded into its journal), so no subscribers file is carried then;
  this machine's suppression file, if any, still is.
- [auth] and [chatops] are left out: the kit is for the CLI, and each of their secrets would be one more
  variable to fill in before the first send."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, get_args

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from config import Settings
from config.references import key_name, reference
from config.secrets import SecretUrl, mask_url

VARIABLE_PREFIX: Final = "FALLBACK_KIT_"
"""Not BROADCASTER_: the settings take a BROADCASTER_ variable near a setting's name for a misspelt setting, and
the service's configuration would then be refused in a shell holding the kit's secrets."""
LEFT_OUT: Final = ("auth", "chatops")
"""Sections of the service's intake: the kit runs the CLI only."""
REPLACED: Final = "store"
"""The kit's journal is its snapshot, whatever the service's is."""
JOURNAL: Final = Path("var/broadcaster.db")
DATA_DIR: Final = Path("var")
MIRROR_DIR: Final = Path("public")
SUBSCRIBERS: Final = Path("var/subscribers.txt")
SUPPRESSED: Final = Path("var/email-suppressed.txt")
CA_FILE: Final = Path("ca.pem")


@dataclass(frozen=True, slots=True)
class SecretVariable:
    """One environment variable the kit's configuration refers to."""

    name: str
    key: str
    """The key it fills, as "[x] consumer_key"."""
    hint: str = ""
    """What it is, without its value: a masked URL, or where to find it."""


@dataclass(frozen=True, slots=True)
class Copy:
    """A file the kit carries: from `source` (as the settings name it) to `target` inside the kit."""

    source: Path
    target: Path


@dataclass(slots=True)
class KitSettings:
    data: dict[str, Any]
    """The TOML document, as tables."""
    variables: list[SecretVariable] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)


def kit_settings(settings: Settings, kit: Path, *, from_service: bool = False) -> KitSettings:
    """The configuration of the kit in directory `kit` (absolute) for these settings. `from_service`: the
    snapshot comes from a running service, whose subscribers file travels in it (as subscribers with source
    "file"), so no file of this machine's is carried."""
    names = _Names()
    data = {
        name: _value(getattr(settings, name), (name,), _marker(info), names)
        for name, info in type(settings).model_fields.items()
        if name not in LEFT_OUT and name != REPLACED
    }
    made = KitSettings(data=_without_none(data), variables=names.variables)
    _relocate(settings, made, kit, names, from_service=from_service)
    return made


DRILL_MIRROR_DIR = "drill-site"


def _relocate(settings: Settings, made: KitSettings, kit: Path, names: _Names, *, from_service: bool) -> None:
    """Point what lives on disk into the kit, and carry along the files a send reads."""
    data = made.data
    data["store"] = {"url": f"sqlite:///{kit / JOURNAL}"}
    data["service"]["data_dir"] = str(kit / DATA_DIR)
    data["mirror"]["directories"] = [str(kit / MIRROR_DIR)]
    if settings.drill.mirror_directory is not None:  # the monthly drill from the kit writes into the kit too
        data["drill"]["mirror_directory"] = str(kit / DRILL_MIRROR_DIR)
    email = data["email"]
    if from_service:
        email.pop("subscribers_file", None)
    elif settings.email.subscribers_file is not None:
        made.copies.append(Copy(settings.email.subscribers_file, SUBSCRIBERS))
        email["subscribers_file"] = str(kit / SUBSCRIBERS)
    made.copies.append(Copy(settings.email.suppression_path(settings.service.data_dir), SUPPRESSED))
    email["suppression_file"] = str(kit / SUPPRESSED)
    if settings.network.ca_file is not None:
        made.copies.append(Copy(settings.network.ca_file, CA_FILE))
        data["network"]["ca_file"] = str(kit / CA_FILE)
    if settings.unsubscribe_url and settings.email.unsubscribe_secret is None:
        # Links are signed with a key the service made in its data directory; the kit must sign with the same
        # one, or the service would refuse every unsubscribe link mailed from the kit.
        key_file = settings.service.data_dir.absolute() / "unsubscribe.key"
        hint = f"the contents of {key_file} on the service's host"
        email["unsubscribe_secret"] = names.refer(("email", "unsubscribe_secret"), hint)


class _Names:
    """Hands out one variable name per secret, from the key it fills, each name once. An item of a list of
    tables is named by its label ([[webhook.targets]] "ops": FALLBACK_KIT_WEBHOOK_TARGETS_OPS_URL), not
    its place, so a target added or removed before it leaves its variable's name as it was."""

    def __init__(self) -> None:
        self.variables: list[SecretVariable] = []
        self.labels: dict[tuple[str, ...], str] = {}
        """Where an item of a list of tables sits -> its label, standing for its index in names."""

    def refer(self, where: tuple[str, ...], hint: str = "") -> str:
        parts = [self.labels.get(where[: n + 1], part) for n, part in enumerate(where)]
        base = VARIABLE_PREFIX + re.sub(r"[^A-Z0-9]+", "_", "_".join(parts).upper()).strip("_")
        taken = {variable.name for variable in self.variables}
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        self.variables.append(SecretVariable(name, key_name(where), hint))
        return reference(name)


def _value(value: Any, where: tuple[str, ...], marker: SecretUrl | None, names: _Names) -> Any:
    """A setting's value as TOML holds it, each secret in it replaced by a reference."""
    if isinstance(value, BaseModel):
        return {
            name: _value(getattr(value, name), (*where, name), _marker(info), names)
            for name, info in type(value).model_fields.items()
        }
    if isinstance(value, dict):
        return {str(key): _value(item, (*where, str(key)), marker, names) for key, item in value.items()}
    if isinstance(value, list | tuple):
        for n, item in enumerate(value):
            label = getattr(item, "label", None) if isinstance(item, BaseModel) else None
            if isinstance(label, str) and label:
                names.labels[(*where, str(n))] = label
        return [_value(item, (*where, str(n)), marker, names) for n, item in enumerate(value)]
    return _scalar(value, where, marker, names)


def _scalar(value: Any, where: tuple[str, ...], marker: SecretUrl | None, names: _Names) -> Any:
    if isinstance(value, SecretStr):
        return names.refer(where) if value.get_secret_value() else ""
    if isinstance(value, str) and value and marker is not None and marker.secrets(value):
        return names.refer(where, mask_url(value))
    if isinstance(value, Path):
        return str(value.absolute())
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return to_jsonable_python(value)  # enums, networks: their plain form, as the settings read them back


def _marker(info: FieldInfo) -> SecretUrl | None:
    """The field's SecretUrl, on it or on its items (`list[Annotated[str, SecretUrl()]]`)."""
    return next(_markers([*info.metadata, info.annotation]), None)


def _markers(annotations: Iterable[Any]) -> Iterator[SecretUrl]:
    for annotation in annotations:
        if isinstance(annotation, SecretUrl):
            yield annotation
        else:
            yield from _markers(get_args(annotation))


def _without_none(value: Any) -> Any:
    """TOML has no null: an unset key is left out, which the settings read as unset."""
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value]
    return value
