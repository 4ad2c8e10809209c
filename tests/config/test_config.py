"""Settings: defaults that run with no file, TOML plus environment, and errors that name file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_settings, resolve_config_path
from tests.conftest import WriteConfig


def error(path: Path | None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


def test_defaults_run_with_no_file(workdir: Path) -> None:
    """No file at all: journal under ./var, mirror into ./public, every other channel off."""
    settings = load_settings(None)
    assert settings.store_url == "sqlite:///var/broadcaster.db"
    assert settings.mirror.enabled and [str(d) for d in settings.mirror.directories] == ["public"]
    assert not (settings.email.enabled or settings.x.enabled or settings.webhook.enabled)
    assert resolve_config_path(None) is None


def test_config_file_is_found_by_flag_env_then_working_directory(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = write_config("[mirror]\npage_title = 'local'\n")
    other = write_config("[mirror]\npage_title = 'other'\n", name="other.toml")
    assert resolve_config_path(None) == Path("broadcaster.toml")
    monkeypatch.setenv("BROADCASTER_CONFIG", str(other))
    assert resolve_config_path(None) == other
    assert resolve_config_path(str(local)) == local


def test_environment_overrides_the_file(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config("[email]\nport = 2525\nhost = 'relay.example'\n")
    monkeypatch.setenv("BROADCASTER_EMAIL__PORT", "1025")
    settings = load_settings(path)
    assert settings.email.port == 1025
    assert settings.email.host == "relay.example"


def test_broken_toml_names_file_line_and_column(write_config: WriteConfig) -> None:
    path = write_config("[mirror]\npage_title = \nenabled = true\n")
    text = error(path)
    assert str(path) in text and "invalid TOML" in text and "line 2" in text


def test_wrongly_typed_key_names_file_key_and_value(write_config: WriteConfig) -> None:
    path = write_config("[email]\nport = 'twenty-five'\n")
    text = error(path)
    assert f"{path}: [email] port:" in text
    assert "valid integer" in text and "'twenty-five'" in text


def test_wrongly_typed_environment_variable_is_named(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADCASTER_MIRROR__ENABLED", "perhaps")
    assert "environment variable BROADCASTER_MIRROR__ENABLED: [mirror] enabled:" in error(None)


def test_unknown_keys_and_sections_are_errors_with_suggestions(write_config: WriteConfig) -> None:
    """A misspelt setting silently ignored is a setting that silently does not apply."""
    assert "unknown key (did you mean 'directories'?)" in error(write_config("[mirror]\ndirectory = ['x']\n"))
    assert "unknown section [emial] (did you mean 'email'?)" in error(write_config("[emial]\nhost = 'x'\n"))
    assert "unknown channel 'emial'" in error(write_config("[retry.emial]\nmax_attempts = 2\n"))


def test_enabled_channels_must_be_complete(write_config: WriteConfig) -> None:
    assert "requires from_addr" in error(write_config("[email]\nenabled = true\n"))
    text = error(write_config("[x]\nenabled = true\nconsumer_key = 'k'\n"))
    assert "requires consumer_secret, access_token, access_token_secret" in text
    assert "at least one [[webhook.targets]]" in error(write_config("[webhook]\nenabled = true\n"))


def test_secrets_are_never_echoed_in_errors(write_config: WriteConfig) -> None:
    path = write_config("[x]\nconsumer_key = ['not', 'a', 'string', 'hunter2']\n")
    assert "hunter2" not in error(path)


def test_webhook_urls_are_never_echoed_in_errors(write_config: WriteConfig) -> None:
    """Incoming-webhook URLs carry their secret in the path."""
    path = write_config("[webhook]\n[[webhook.targets]]\nurl = 'hooks.slack.com/services/T0/B0/s3cr3tpath'\n")
    text = error(path)
    assert "[webhook] targets[0].url: must start with http:// or https://" in text
    assert "s3cr3tpath" not in text


def test_missing_file_is_an_error(workdir: Path) -> None:
    assert "config file not found" in error(workdir / "nope.toml")


def test_lane_policy_overrides_only_what_is_given(write_config: WriteConfig) -> None:
    settings = load_settings(write_config("[retry.email]\nmax_attempts = 2\nttl = 60\n"))
    email = settings.lane_policy("email")
    assert (email.max_attempts, email.ttl) == (2, 60)
    assert email.timeout == 900  # the email lane's default, not the generic one
    assert settings.lane_policy("mirror").max_attempts == 10


def test_secret_values_lists_every_secret(write_config: WriteConfig) -> None:
    """Every SecretStr, and the credential-bearing part of every webhook URL (here its path)."""
    settings = load_settings(
        write_config(
            "[auth]\napi_tokens = ['tok-1']\n[webhook]\n[[webhook.targets]]\nurl = 'https://h.example/hooks/T0K3N'\n"
            "secret = 'whsec-2'\n"
        )
    )
    assert set(settings.secret_values()) == {"tok-1", "whsec-2", "/hooks/T0K3N", "\\/hooks\\/T0K3N", "T0K3N"}


def test_example_config_is_valid(workdir: Path) -> None:
    """config/example.toml documents every key; it must load as it stands."""
    example = Path(__file__).resolve().parents[2] / "config" / "example.toml"
    settings = load_settings(example)
    assert settings.mirror.page_title


def test_an_enabled_mirror_needs_a_directory(write_config: WriteConfig) -> None:
    assert "requires at least one directory" in error(write_config("[mirror]\ndirectories = []\n"))
    assert load_settings(write_config("[mirror]\nenabled = false\ndirectories = []\n")).mirror.enabled is False


def test_the_old_public_url_alone_is_an_error_naming_its_new_key(write_config: WriteConfig) -> None:
    """[service] public_url used to be the status site's address; a file written then must not silently
    point the site's links at the service."""
    message = error(write_config('[service]\npublic_url = "https://status.example.com"\n'))
    assert "[mirror] public_url" in message
    both = '[service]\npublic_url = "https://broadcaster.example.com"\n[mirror]\npublic_url = "https://status.example.com"\n'
    settings = load_settings(write_config(both))
    assert (settings.service.public_url, settings.mirror.public_url) == (
        "https://broadcaster.example.com",
        "https://status.example.com",
    )


def test_unsubscribe_links_go_to_this_service_when_it_answers_over_https(write_config: WriteConfig) -> None:
    https = '[service]\npublic_url = "https://bc.example.com/"\n[mirror]\npublic_url = "https://status.example.com"\n'
    assert load_settings(write_config(https)).unsubscribe_url == "https://bc.example.com/unsubscribe"
    http = '[service]\npublic_url = "http://bc.example.com"\n[mirror]\npublic_url = "https://status.example.com"\n'
    assert load_settings(write_config(http)).unsubscribe_url == ""  # RFC 8058 one-click needs HTTPS
    explicit = '[email]\nunsubscribe_url = "https://elsewhere.example.com/u"\n'
    assert load_settings(write_config(explicit)).unsubscribe_url == "https://elsewhere.example.com/u"


def test_api_tokens_may_be_named(write_config: WriteConfig) -> None:
    listed = load_settings(write_config('[auth]\napi_tokens = ["aaaa", "bbbb"]\n'))
    assert listed.auth.named_api_tokens() == {"token-1": "aaaa", "token-2": "bbbb"}
    named = load_settings(write_config('[auth]\napi_tokens = { deploy-bot = "cccc" }\n'))
    assert named.auth.named_api_tokens() == {"deploy-bot": "cccc"}
    assert "cccc" in named.secret_values()


def test_snapshot_tokens_name_api_tokens(write_config: WriteConfig) -> None:
    config = write_config('[auth]\napi_tokens = { kit = "t0ken-kit-0a1b2c" }\nsnapshot_tokens = ["kti"]\n')
    with pytest.raises(ConfigError, match=r"snapshot_tokens names 'kti', which is none of api_tokens' names \(kit\)"):
        load_settings(config)
