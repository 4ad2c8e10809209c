"""The two X API v2 calls the channel makes, through tweepy's AsyncClient on one pooled session per lane.

tweepy hard-codes https://api.twitter.com and opens a session per request unless `client.session` is set,
so the lane's own session (channels.transport.http: [network] pins and CA file, a connection limit, timeouts) is
assigned to it. `return_type=aiohttp.ClientResponse` makes tweepy hand back the answer itself, so its
rate-limit and 24-hour quota headers can be read; tweepy has already read the body, so `.json()` is safe.

Every failure comes out as one XApiError carrying the HTTP status (None when X never answered), the
answer's headers and a reason fit for the ledger, with no credential in it."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from tweepy.asynchronous import AsyncClient
from tweepy.errors import HTTPException

from channels.transport.http import client_session
from config.scrubber import Scrubber
from config.sections import NetworkSettings
from config.x import XSettings

# At DEBUG, tweepy logs every request's headers and oauthlib every signature base string, and both carry
# the consumer key and the access token, which the settings hold as secrets. Nothing below INFO leaves
# these two loggers, whatever the process's logging level.
for _logger in ("tweepy.asynchronous.client", "oauthlib.oauth1"):
    logging.getLogger(_logger).setLevel(logging.INFO)

DUPLICATE_CODE: Final = 187
"""X's (v1.1-era) error code for "Status is a duplicate"; v2 says it in words (see XApiError.duplicate)."""
REPLY_TARGET_GONE_CODE: Final = 385
"""X's error code for a reply to a post that is deleted or not visible."""
_DUPLICATE_WORDS: Final = ("duplicate content", "status is a duplicate")
_REPLY_TARGET_GONE_WORDS: Final = ("reply to a tweet that is deleted or not visible", "reply to a post that is deleted")


@dataclass(frozen=True, slots=True)
class ApiAnswer:
    """A successful answer: its `data` object (empty if X sent none) and its headers, names lower-cased."""

    data: Mapping[str, Any]
    headers: Mapping[str, str]


class XApiError(Exception):
    """A failed call: a reason fit for the ledger, the HTTP status (None when no answer came: a network
    error, a timeout), the answer's headers (names lower-cased), and X's error messages and codes."""

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        messages: Sequence[str] = (),
        codes: Sequence[int] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers: Mapping[str, str] = headers or {}
        self.messages = tuple(messages)
        self.codes = tuple(codes)

    @property
    def duplicate(self) -> bool:
        """X refused the post because the account already posted the same text."""
        return self.status == 403 and (DUPLICATE_CODE in self.codes or self._says(_DUPLICATE_WORDS))

    @property
    def reply_target_gone(self) -> bool:
        """X refused a reply because the post it replies to was deleted (or is hidden from the account)."""
        return self.status in (400, 403) and (
            REPLY_TARGET_GONE_CODE in self.codes or self._says(_REPLY_TARGET_GONE_WORDS)
        )

    def _says(self, phrases: Sequence[str]) -> bool:
        return any(phrase in message.lower() for message in self.messages for phrase in phrases)


class XApi:
    """POST /2/tweets and GET /2/users/me with OAuth 1.0a user context. Build it anywhere; its session is
    opened on the first call (inside the running loop) and closed by `aclose`."""

    def __init__(self, settings: XSettings, network: NetworkSettings, *, connections: int) -> None:
        credentials = {
            "consumer_key": settings.consumer_key,
            "consumer_secret": settings.consumer_secret,
            "access_token": settings.access_token,
            "access_token_secret": settings.access_token_secret,
        }
        values = {name: secret.get_secret_value() if secret else "" for name, secret in credentials.items()}
        # X never echoes credentials, but an error text is journaled and shown: make sure.
        self._scrub = Scrubber(values.values())
        self._client: Any = AsyncClient(**values, return_type=aiohttp.ClientResponse)
        self._network = network
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=settings.request_timeout, connect=settings.connect_timeout)
        self._session: aiohttp.ClientSession | None = None

    async def create_post(self, text: str, *, reply_to: str | None) -> ApiAnswer:
        """Post `text`, as a reply to post `reply_to` when given."""
        return await self._call(self._client.create_tweet, text=text, in_reply_to_tweet_id=reply_to)

    async def me(self) -> ApiAnswer:
        """The account the credentials belong to (its `username` in `data`); posts nothing."""
        return await self._call(self._client.get_me)

    async def aclose(self) -> None:
        """Close the session, if a call opened it."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _call(self, method: Callable[..., Awaitable[aiohttp.ClientResponse]], **arguments: Any) -> ApiAnswer:
        if self._session is None:
            self._session = client_session(self._network, limit=self._connections, timeout=self._timeout)
            self._client.session = self._session
        try:
            response = await method(**arguments, user_auth=True)
        except HTTPException as exc:
            raise self._refusal(exc) from None
        except aiohttp.ContentTypeError as exc:
            # tweepy parses every error answer as JSON first: an HTML page from a proxy ends up here.
            headers = _lowered(exc.headers)
            content_type = headers.get("content-type", "no content type")
            raise XApiError(f"X API {exc.status}: answer is not JSON ({content_type})", exc.status, headers) from None
        except json.JSONDecodeError:
            # tweepy parsed an error answer whose JSON is broken: the status is lost with it.
            raise XApiError("X API answered an error with malformed JSON") from None
        except TimeoutError:
            raise XApiError(f"X API did not answer within {self._timeout.total:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise XApiError(self._scrub(f"cannot reach the X API: {type(exc).__name__}: {exc}")) from None
        return ApiAnswer(await _data_of(response), _lowered(response.headers))

    def _refusal(self, exc: HTTPException) -> XApiError:
        response = exc.response
        status = int(response.status)
        messages = [str(message) for message in exc.api_messages]
        codes = [code for code in exc.api_codes if isinstance(code, int)]
        said = "; ".join(dict.fromkeys(m for m in messages if m and m != response.reason))
        reason = f"X API {status} {response.reason}" + (f": {said}" if said else "")
        return XApiError(self._scrub(reason), status, _lowered(response.headers), messages, codes)


async def _data_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The `data` object of a successful answer, or {} when X sent none or sent something unreadable: X
    said yes, which is what counts (the caller records that no id came)."""
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _lowered(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {name.lower(): value for name, value in (headers or {}).items()}


_LIMITS: Final = ("x-rate-limit", "x-app-limit-24hour", "x-user-limit-24hour")
"""X's rate-limit header families: the endpoint's 15-minute window, and the app's and the user's 24 hours."""


def rate_limit_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds from `now` (epoch seconds) until X lifts the limit that refused a request: the latest reset
    among the exhausted limits (remaining 0), else x-rate-limit-reset, else Retry-After; None if X said
    nothing. One second is added to a reset, which X gives in whole seconds of its own clock."""
    exhausted = [
        reset
        for family in _LIMITS
        if _number(headers.get(f"{family}-remaining")) == 0
        and (reset := _number(headers.get(f"{family}-reset"))) is not None
    ]
    reset = max(exhausted) if exhausted else _number(headers.get("x-rate-limit-reset"))
    if reset is not None:
        return max(0.0, reset - now) + 1.0
    retry_after = _number(headers.get("retry-after"))
    return None if retry_after is None else max(0.0, retry_after)


def quota_note(headers: Mapping[str, str]) -> str:
    """What is left of the 24-hour post quotas, e.g. "24h quota left: app 1499, user 99" ("" if X did
    not say)."""
    left = [
        f"{who} {remaining:g}"
        for who in ("app", "user")
        if (remaining := _number(headers.get(f"x-{who}-limit-24hour-remaining"))) is not None
    ]
    return f"24h quota left: {', '.join(left)}" if left else ""


def _number(text: str | None) -> float | None:
    try:
        value = None if text is None else float(text)
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
