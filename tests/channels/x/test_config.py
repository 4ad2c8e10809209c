"""The [x] section: defaults, and mistakes that must stop the broadcaster at start-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config import ConfigError, load_settings

CREDENTIALS = 'consumer_key = "k"\nconsumer_secret = "s"\naccess_token = "t"\n'


def test_defaults_are_off_with_linking_only_when_shortened(write_config: Callable[[str], Path]) -> None:
    """No [x] keys: disabled, always_link false, 10 s to connect and 20 s per request."""
    x = load_settings(write_config("")).x
    assert (x.enabled, x.always_link, x.connect_timeout, x.request_timeout) == (False, False, 10.0, 20.0)


def test_an_empty_credential_counts_as_missing(write_config: Callable[[str], Path]) -> None:
    """enabled with access_token_secret = "" fails naming the key (an empty env var must not pass)."""
    path = write_config(f'[x]\nenabled = true\n{CREDENTIALS}access_token_secret = ""\n')
    with pytest.raises(ConfigError, match="requires access_token_secret"):
        load_settings(path)


def test_a_connect_timeout_longer_than_the_request_is_refused(write_config: Callable[[str], Path]) -> None:
    """connect_timeout above request_timeout can never apply: a configuration error."""
    with pytest.raises(ConfigError, match="connect_timeout must not exceed request_timeout"):
        load_settings(write_config("[x]\nconnect_timeout = 30\nrequest_timeout = 5\n"))


def test_secrets_come_from_the_environment(
    write_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """BROADCASTER_X__ACCESS_TOKEN_SECRET completes the file's credentials and stays a secret."""
    monkeypatch.setenv("BROADCASTER_X__ACCESS_TOKEN_SECRET", "from-the-environment")
    x = load_settings(write_config(f"[x]\nenabled = true\n{CREDENTIALS}")).x
    assert x.access_token_secret is not None
    assert x.access_token_secret.get_secret_value() == "from-the-environment"
    assert "from-the-environment" not in repr(x)
