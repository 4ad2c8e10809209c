"""[drill]: where `broadcaster drill` sends its test update, and what it must never equal.

A drill has targets of its own: `email_recipients` (mailed through the [email] relay, whose working is
the point of the drill), `[[drill.webhook_targets]]` (shaped as [[webhook.targets]]), a `mirror_directory`
and a test X account in `[drill.x]` (four credentials, as [x]). A channel with no drill target is left out.

What counts as "the same target" is decided here, once: addresses case-insensitively, webhook URLs
normalised (`same_url`), directories by real path with one inside the other counting as the same
(`overlapping`), and X credentials of one account (`same_x_account`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from config.email import is_address
from config.mirror import MirrorSettings
from config.sections import Section
from config.webhook import WebhookSettings, WebhookTarget
from config.x import XSettings

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# RFC 3986's sub-delims plus ":" and "@": what a path segment may hold unescaped. "&" and "=" are left out
# for query parts, where they separate pairs.
_PATH_SAFE: Final = "!$&'()*+,;=:@"
_QUERY_SAFE: Final = "!$'()*+,;:@/?"
_X_USER_ID: Final = re.compile(r"^(\d+)-")
"""An X OAuth 1.0a access token starts with the id of the account it acts for: "<user id>-<random>"."""


class DrillXSettings(XSettings):
    """[drill.x]: the test account the drill posts as, with its own four credentials (as [x], which it
    must not equal). Present means on; `enabled = false` keeps it written down but unused."""

    enabled: bool = True


class DrillSettings(Section):
    """The drill's own targets; any left empty leaves its channel out of the drill."""

    email_recipients: list[str] = Field(
        default=[],
        description="Addresses the drill mails through the [email] relay (never the subscribers file's).",
    )
    mirror_directory: Path | None = Field(
        default=None, description="Where the drill writes its own status site; unset: no mirror in drills."
    )
    webhook_targets: list[WebhookTarget] = Field(default=[], description="Shaped exactly as [[webhook.targets]].")
    x: DrillXSettings | None = Field(default=None, description="The test X account; unset: X is skipped.")

    @field_validator("email_recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for address in value:
            if not is_address(address):
                raise ValueError(f"{address!r} is not an email address such as ops@example.com")
            if address.lower() in seen:
                raise ValueError(f"{address!r} is listed twice")
            seen.add(address.lower())
        return value

    @model_validator(mode="after")
    def _distinct_targets(self) -> DrillSettings:
        labels = [target.label for target in self.webhook_targets]
        if len(set(labels)) != len(labels):
            raise ValueError("two webhook_targets have the same name (or the same URL)")
        return self

    @property
    def x_account(self) -> DrillXSettings | None:
        """[drill.x] when it is to be used."""
        return self.x if self.x is not None and self.x.enabled else None

    def same_as_real(
        self,
        *,
        subscribers: Iterable[str],
        webhook: WebhookSettings,
        mirror: MirrorSettings,
        x: XSettings,
        joined: Iterable[str] = (),
        hooks: Iterable[str] = (),
        data_dir: Path | None = None,
    ) -> list[str]:
        """One sentence per drill target that equals a real one, naming both keys and no secret; empty when
        the drill can only reach its own targets. `subscribers`: the addresses of the subscribers file;
        `joined` and `hooks`: the journal's email and webhook subscribers (who subscribed themselves, or
        whom an operator added)."""
        found = self._same_addresses(subscribers, "a subscriber in [email] subscribers_file")
        found += self._same_addresses(joined, "an email subscriber in the journal (`broadcaster subscribers`)")
        for n, target in enumerate(self.webhook_targets):
            found += [
                f"[drill] webhook_targets[{n}] ({target.label}) has the same URL as "
                f"[webhook] targets[{k}] ({other.label})"
                for k, other in enumerate(webhook.targets)
                if same_url(target.url, other.url)
            ]
            if any(same_url(target.url, hook) for hook in hooks):
                found.append(
                    f"[drill] webhook_targets[{n}] ({target.label}) has the URL of a webhook subscriber in the "
                    "journal (`broadcaster subscribers`)"
                )
        if self.mirror_directory is not None:
            found += [
                f"[drill] mirror_directory {str(self.mirror_directory)!r} is, holds or lies inside [mirror] "
                f"directories[{k}] {str(directory)!r}"
                for k, directory in enumerate(mirror.directories)
                if overlapping(self.mirror_directory, directory)
            ]
            # The data directory holds each publish target's staging copy of the real site: a drill page
            # written there would be published with it.
            if data_dir is not None and overlapping(self.mirror_directory, data_dir):
                found.append(
                    f"[drill] mirror_directory {str(self.mirror_directory)!r} is, holds or lies inside [service] "
                    f"data_dir {str(data_dir)!r} (where the real site is staged for publishing)"
                )
        account = self.x_account
        if account is not None and same_x_account(account, x):
            found.append("[drill.x] is the same X account as [x] (its access_token is for the same user)")
        return found

    def _same_addresses(self, real: Iterable[str], what: str) -> list[str]:
        known = {address.lower() for address in real}
        return [
            f"[drill] email_recipients[{n}] {address!r} is {what}"
            for n, address in enumerate(self.email_recipients)
            if address.lower() in known
        ]


def same_url(a: str, b: str) -> bool:
    """True when two http(s) URLs name the same endpoint (see normal_url)."""
    return normal_url(a) == normal_url(b)


def normal_url(url: str) -> str:
    """`url` as compared for sameness: scheme and host lower-cased, the default port dropped, credentials and
    fragment dropped (neither changes where the request goes), percent-encoding in one form (unreserved
    characters decoded, the rest upper-case escapes), and the path without its trailing slash (so an empty
    path, "/" and "/hook/" against "/hook" compare equal)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    shown_host = f"[{host}]" if ":" in host else host
    netloc = shown_host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{shown_host}:{port}"
    path = "/".join(_normal_escapes(segment, _PATH_SAFE) for segment in parts.path.split("/")).rstrip("/")
    query = "&".join(
        "=".join(_normal_escapes(piece, _QUERY_SAFE) for piece in pair.split("=", 1)) for pair in parts.query.split("&")
    )
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if parts.query else "")


def _normal_escapes(text: str, safe: str) -> str:
    return quote(unquote(text), safe=safe)


def overlapping(a: Path, b: Path) -> bool:
    """True when two directories are one, or one lies inside the other, once symbolic links and relative
    parts are resolved (a directory that does not exist yet is resolved as far as it does)."""
    real_a, real_b = a.resolve(), b.resolve()
    return real_a == real_b or real_a in real_b.parents or real_b in real_a.parents


def same_x_account(a: XSettings, b: XSettings) -> bool:
    """True when two sets of X credentials act for one account: the same access token (whatever the
    consumer key), or access tokens naming the same user id (a second token of the real account)."""
    token_a, token_b = _secret(a.access_token), _secret(b.access_token)
    if not token_a or not token_b:
        return False
    if token_a == token_b:
        return True
    user_a, user_b = _X_USER_ID.match(token_a), _X_USER_ID.match(token_b)
    return user_a is not None and user_b is not None and user_a[1] == user_b[1]


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""
