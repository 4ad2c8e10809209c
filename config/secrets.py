"""What is secret: every SecretStr in the settings (and the credential inside an "Authorization"-style
value), and the credential-bearing parts of every URL field marked `Annotated[str, SecretUrl()]`
(incoming-webhook URLs carry their secret in the path, others in the query or the userinfo).
config.scrubber.Scrubber masks them, and the forms they take on the way out, in every text."""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, get_args, runtime_checkable
from urllib.parse import parse_qsl, quote_plus, unquote, urlsplit

from pydantic import BaseModel, SecretStr

MASK: Final = "********"
MIN_SECRET_LENGTH: Final = 4
"""Shorter secrets are never scrubbed: a value of one to three characters cannot be told from ordinary
text (a password "ab" would mask every "ab" in every message), and it protects next to nothing anyway."""
TOKEN_LENGTH: Final = 16
"""A query value this long counts as a credential of its own even without a digit."""

_URL_IN_TEXT: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_SECRET_KEY: Final = re.compile(r"token|key|secret|sig|pass|auth|code|cred", re.IGNORECASE)
_DIGIT: Final = re.compile(r"\d")
# RFC 3986 appendix B, for URLs with an authority: quicker than urlsplit, which counts when every start
# takes apart thousands of webhook URLs.
_URL_PARTS: Final = re.compile(
    r"(?P<scheme>[^:/?#]+)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?",
    re.DOTALL,
)


@runtime_checkable
class HasSecretForms(Protocol):
    """A settings section whose secrets also travel in a form made of several fields (SMTP's AUTH PLAIN
    blob of user name and password): it names those forms, to be scrubbed as they are."""

    def secret_forms(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class SecretUrl:
    """Marks a settings field holding a URL that may carry credentials: `url: Annotated[str, SecretUrl()]`
    (or `list[Annotated[str, SecretUrl()]]`). Its credential parts join the settings' secrets and
    `broadcaster config` shows it masked. `path_is_secret=False` is for URLs whose path names a place
    rather than a credential, such as a database URL's path."""

    path_is_secret: bool = True

    def secrets(self, url: str) -> list[str]:
        return url_secrets(url, path_is_secret=self.path_is_secret)

    def mask(self, url: str) -> str:
        return mask_url(url, keep_path=not self.path_is_secret)


def url_secrets(url: str, *, path_is_secret: bool = True) -> list[str]:
    """The credential-bearing parts of `url`: its userinfo, its password and the HTTP Basic credentials
    they make (what an HTTP client sends for them), its path, its query string and each query value that
    looks like a credential or sits under a key named like one (token, key, sig...), and its fragment.
    Nothing for https://host/.

    Not the whole URL: masking these parts leaves only its scheme and host, which mask_url shows anyway,
    and the scrubber's index would hold a second entry per webhook target, ending as its path does."""
    parts = _URL_PARTS.fullmatch(url)
    if parts is None:  # not scheme://...: all of it is suspect
        return [url]
    authority, path, query, fragment = parts.group("authority", "path", "query", "fragment")
    found: list[str] = []
    userinfo, at, _host = authority.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        # "token@host" (no colon) carries the credential as the user name.
        found += [userinfo, unquote(password if colon else user), basic_credentials(unquote(user), unquote(password))]
    if path_is_secret and len(path) > 1:
        # The whole path, as a receiver may echo it JSON-escaped ("\/services\/..."), and each segment that
        # looks like a credential, as one may echo just its token.
        found += [path, path.replace("/", "\\/")]
        found += [segment for segment in path.split("/") if _looks_like_credential(segment)]
    if query:
        found.append(query)
        found += [
            value
            for key, value in parse_qsl(query, keep_blank_values=True)
            if _looks_like_credential(value) or (value and _SECRET_KEY.search(key))
        ]
    if fragment:
        found.append(fragment)
    return found


def _looks_like_credential(value: str) -> bool:
    """A query value or path segment scrubbed on its own: one with a digit, or a long one. Plain words
    ("json", "hooks", "true") are not, or every text mentioning them would be shredded; they are still
    scrubbed as part of the whole query or path."""
    return len(value) >= TOKEN_LENGTH or (len(value) >= MIN_SECRET_LENGTH and _DIGIT.search(value) is not None)


def mask_url(url: str, *, keep_path: bool = False) -> str:
    """What may be shown of a URL: scheme://host[:port], then "/…" when anything else was there. With
    `keep_path` (a database URL), the path stays and only userinfo, query and fragment are elided."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced "[" in the host
        return "…"
    if not parts.scheme:
        return "…" if url else url
    _userinfo, at, host = parts.netloc.rpartition("@")
    if keep_path:
        hidden = "?…" if parts.query or parts.fragment else ""
        return f"{parts.scheme}://{'…@' if at else ''}{host}{parts.path}{hidden}"
    hidden = "/…" if at or len(parts.path) > 1 or parts.query or parts.fragment else parts.path
    return f"{parts.scheme}://{host}{hidden}"


def mask_urls_in(text: str) -> str:
    """`text` with every URL in it cut down to what mask_url shows."""
    return _URL_IN_TEXT.sub(lambda found: mask_url(found[0]), text)


def plain_credentials(user: str, password: str) -> str:
    """The SASL PLAIN blob an SMTP client sends in AUTH PLAIN (a server may echo it in its refusal)."""
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")


def basic_credentials(user: str, password: str) -> str:
    """The token of an "Authorization: Basic" header for this user and password."""
    try:
        raw = f"{user}:{password}".encode("latin-1")  # what aiohttp's BasicAuth encodes with
    except UnicodeEncodeError:
        raw = f"{user}:{password}".encode()
    return base64.b64encode(raw).decode("ascii")


def credential_parts(value: str) -> list[str]:
    """A secret value and the credentials inside it: "Bearer T" also yields T, and "Basic B" the
    "user:password" and the password that B encodes, so a receiver quoting them back is scrubbed too."""
    if " " not in value:
        return [value]
    found = [value]
    scheme, _, credential = value.strip().partition(" ")
    credential = credential.strip()
    if not credential or " " in credential:
        return found
    found.append(credential)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return found
        found += [decoded, decoded.partition(":")[2]]
    return found


def encoded_forms(credential: str) -> list[str]:
    """A credential as it is, and as clients encode credentials: base64 (standard and URL-safe, without
    the padding, which the padded forms contain) and, for one with a space, form-encoded. Percent-encoded
    forms need no entry: the scrubber decodes percent-encoded text instead (config.scrubber)."""
    encoded = binascii.b2a_base64(credential.encode(), newline=False).decode("ascii").rstrip("=")
    forms = [credential, encoded]
    if "+" in encoded or "/" in encoded:
        forms.append(encoded.replace("+", "-").replace("/", "_"))
    if " " in credential:
        forms.append(quote_plus(credential))
    return forms


# --- the secrets of a settings tree


@dataclass(frozen=True, slots=True)
class _SecretField:
    name: str
    url: SecretUrl | None
    """The field's URL marker; None for a field that holds SecretStr values or models that hold secrets."""


@dataclass(frozen=True, slots=True)
class Secrets:
    """The secrets a settings tree holds, in clear, by how they are scrubbed."""

    credentials: list[str] = field(default_factory=list)
    """SecretStr values and the credentials inside them: also scrubbed as encoded_forms gives them."""
    url_parts: list[str] = field(default_factory=list)
    """What url_secrets finds in every SecretUrl field: scrubbed as typed (and percent-encoded)."""

    def values(self) -> list[str]:
        """All of them, each once."""
        return list(dict.fromkeys([*self.credentials, *self.url_parts]))


def collect_secrets(value: object) -> Secrets:
    """Every secret held by `value`, a settings model (or a list or dict of them)."""
    found = Secrets()
    _collect(value, found)
    return found


def _collect(value: object, found: Secrets) -> None:
    if isinstance(value, BaseModel):
        if hasattr(type(value), "secret_forms") and isinstance(value, HasSecretForms):  # the cheap test first
            found.url_parts.extend(value.secret_forms())
        for field_ in _secret_fields(type(value)):
            item = getattr(value, field_.name)
            if field_.url is None:
                _collect(item, found)
            else:
                for url in _strings(item):
                    found.url_parts.extend(field_.url.secrets(url))
    elif isinstance(value, SecretStr):
        if secret := value.get_secret_value():
            found.credentials.extend(credential_parts(secret))
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)


def masked_dump(model: BaseModel) -> dict[str, Any]:
    """`model.model_dump(mode="json")` with every SecretUrl field masked (SecretStr values are already)."""
    dumped = model.model_dump(mode="json")
    _mask_urls(model, dumped)
    return dumped


def _mask_urls(model: BaseModel, dumped: dict[str, Any]) -> None:
    for field_ in _secret_fields(type(model)):
        item = getattr(model, field_.name)
        if field_.url is not None:
            dumped[field_.name] = _masked(item, field_.url)
            continue
        shown = dumped[field_.name]
        if isinstance(item, BaseModel):
            _mask_urls(item, shown)
        elif isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, BaseModel):
                    _mask_urls(value, shown[key])
        elif isinstance(item, list | tuple):
            for value, value_shown in zip(item, shown, strict=True):
                if isinstance(value, BaseModel):
                    _mask_urls(value, value_shown)


def _masked(value: object, marker: SecretUrl) -> object:
    if isinstance(value, str):
        return marker.mask(value) if value else value
    if isinstance(value, dict):
        return {key: _masked(item, marker) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item, marker) for item in value]
    return value


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


@functools.cache
def _secret_fields(model: type[BaseModel]) -> tuple[_SecretField, ...]:
    """The fields of `model` that can hold a secret, worked out once per class: the walk over 10,000
    webhook targets then reads three fields of each, not all of them."""
    found = []
    for name, info in model.model_fields.items():
        marker = next(_markers([*info.metadata, info.annotation]), None)
        if marker is not None or _may_hold_secrets(info.annotation):
            found.append(_SecretField(name, marker))
    return tuple(found)


def _markers(annotations: Iterable[object]) -> Iterator[SecretUrl]:
    for annotation in annotations:
        if isinstance(annotation, SecretUrl):
            yield annotation
        else:
            yield from _markers(get_args(annotation))


def _may_hold_secrets(annotation: object) -> bool:
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return bool(_secret_fields(annotation))
    return any(_may_hold_secrets(arg) for arg in get_args(annotation))
