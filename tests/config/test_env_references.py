"""Secrets as environment references: a secret-valued key written as "${NAME}" takes NAME's value from the
environment when the settings load; a missing variable is a configuration error naming it and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config import ConfigError, load_settings
from config.publish import GitTarget, S3Target, SftpTarget
from tests.conftest import WriteConfig
from tests.support.helpers import run_cli

SIGNING_SECRET = "whsec_c2lnbmluZy1rZXktNmMwZmZlZS0wMTIzNDU2Nzg5"
HOOK_URL = "https://hooks.example.com/services/T0K3N-ref-5e1c"
VALUES = {
    "KIT_X_CONSUMER_KEY": "ck-ref-3fd1a8",
    "KIT_X_CONSUMER_SECRET": "cs-ref-8b42c9e07d",
    "KIT_X_ACCESS_TOKEN": "1650-at-ref-5e90b2",
    "KIT_X_ACCESS_TOKEN_SECRET": "ats-ref-c7a3f61d48",
    "KIT_HOOK_URL": HOOK_URL,
    "KIT_HOOK_SECRET": SIGNING_SECRET,
    "KIT_HOOK_AUTH": "Bearer hdr-ref-77a1c3",
    "KIT_RELAY_PASSWORD": "relay-ref-pw-9c1e",
    "KIT_API_TOKEN": "api-ref-tok-4b8d",
    "KIT_S3_KEY_ID": "AKIA-ref-61c2",
    "KIT_S3_SECRET": "s3-ref-secret-0d9e",
    "KIT_GIT_TOKEN": "ghp-ref-git-3a7f",
}
CONFIG = """
[auth]
api_tokens = { deploy-bot = "${KIT_API_TOKEN}" }
[x]
enabled = true
consumer_key = "${KIT_X_CONSUMER_KEY}"
consumer_secret = "${KIT_X_CONSUMER_SECRET}"
access_token = "${KIT_X_ACCESS_TOKEN}"
access_token_secret = "${KIT_X_ACCESS_TOKEN_SECRET}"
[email]
from_addr = "status@example.com"
[[email.fallback_relays]]
host = "relay.example.com"
username = "status"
password = "${KIT_RELAY_PASSWORD}"
[webhook]
enabled = true
[[webhook.targets]]
name = "ops"
url = "${KIT_HOOK_URL}"
secret = "${KIT_HOOK_SECRET}"
headers = { Authorization = "${KIT_HOOK_AUTH}" }
[mirror]
page_title = "${KIT_X_CONSUMER_KEY}"
[[mirror.publish]]
kind = "s3"
bucket = "status-example"
access_key_id = "${KIT_S3_KEY_ID}"
secret_access_key = "${KIT_S3_SECRET}"
[[mirror.publish]]
kind = "git"
remote = "https://git.example.com/ops/status.git"
token = "${KIT_GIT_TOKEN}"
[[mirror.publish]]
kind = "sftp"
host = "backup.example.com"
username = "status"
key_file = "/etc/broadcaster/sftp_key"
known_hosts = "/etc/broadcaster/known_hosts"
path = "${KIT_GIT_TOKEN}"
"""


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in VALUES.items():
        monkeypatch.setenv(name, value)
    return VALUES


def test_each_secret_reference_takes_its_variables_value(
    write_config: WriteConfig, environment: dict[str, str]
) -> None:
    settings = load_settings(write_config(CONFIG))
    x = settings.x
    assert [
        secret.get_secret_value() if secret else None
        for secret in (x.consumer_key, x.consumer_secret, x.access_token, x.access_token_secret)
    ] == [
        environment[f"KIT_X_{name}"]
        for name in ("CONSUMER_KEY", "CONSUMER_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET")
    ]
    target = settings.webhook.targets[0]
    assert target.url == HOOK_URL
    assert target.secret is not None and target.secret.get_secret_value() == SIGNING_SECRET
    assert target.headers["Authorization"].get_secret_value() == environment["KIT_HOOK_AUTH"]
    relay = settings.email.fallback_relays[0].password
    assert relay is not None and relay.get_secret_value() == environment["KIT_RELAY_PASSWORD"]
    assert settings.auth.named_api_tokens() == {"deploy-bot": environment["KIT_API_TOKEN"]}
    s3, git, sftp = settings.mirror.publish
    assert isinstance(s3, S3Target) and isinstance(git, GitTarget) and isinstance(sftp, SftpTarget)
    assert s3.secret_access_key is not None and s3.secret_access_key.get_secret_value() == environment["KIT_S3_SECRET"]
    # Each publish target is resolved as the kind it is: a git target's token too, not only an s3 target's keys.
    assert git.token is not None and git.token.get_secret_value() == environment["KIT_GIT_TOKEN"]
    # The resolved values are secrets like any other: the scrubber masks them.
    assert settings.scrubber(f"token {environment['KIT_API_TOKEN']}") == "token ********"


def test_a_reference_in_a_key_that_is_no_secret_stays_text(
    write_config: WriteConfig, environment: dict[str, str]
) -> None:
    settings = load_settings(write_config(CONFIG))
    assert settings.mirror.page_title == "${KIT_X_CONSUMER_KEY}"
    sftp = settings.mirror.publish[2]
    assert isinstance(sftp, SftpTarget) and sftp.path == "${KIT_GIT_TOKEN}"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("KIT_X_ACCESS_TOKEN", "[x] access_token"),
        ("KIT_HOOK_SECRET", "[webhook] targets[0].secret"),
        ("KIT_HOOK_AUTH", "[webhook] targets[0].headers.Authorization"),
        ("KIT_RELAY_PASSWORD", "[email] fallback_relays[0].password"),
        ("KIT_API_TOKEN", "[auth] api_tokens.deploy-bot"),
        ("KIT_S3_SECRET", "[mirror] publish[0].secret_access_key"),
        ("KIT_GIT_TOKEN", "[mirror] publish[1].token"),
    ],
)
def test_a_missing_variable_is_an_error_naming_it_and_the_key(
    write_config: WriteConfig, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, name: str, key: str
) -> None:
    path = write_config(CONFIG)
    monkeypatch.delenv(name)
    with pytest.raises(ConfigError) as missing:
        load_settings(path)
    assert str(missing.value) == f"{path}: {key} refers to environment variable {name}, which is not set"
    monkeypatch.setenv(name, "")
    with pytest.raises(ConfigError, match=f"{name}, which is empty$"):
        load_settings(path)


def test_the_cli_exits_2_naming_the_missing_variable(write_config: WriteConfig, workdir: Path) -> None:
    write_config(CONFIG)
    shown = run_cli("config", cwd=workdir, env={**VALUES, "KIT_X_CONSUMER_SECRET": ""})
    assert shown.returncode == 2
    assert "[x] consumer_secret refers to environment variable KIT_X_CONSUMER_SECRET, which is empty" in shown.stderr


def test_broadcaster_config_never_prints_a_referenced_secret(write_config: WriteConfig, workdir: Path) -> None:
    write_config(CONFIG)
    shown = run_cli("config", cwd=workdir, env=VALUES)
    assert shown.returncode == 0, shown.stderr
    effective = json.loads(shown.stdout)
    assert effective["x"]["consumer_key"] == "**********"
    assert effective["webhook"]["targets"][0]["url"] == "https://hooks.example.com/…"
    for secret in [*VALUES.values(), "T0K3N-ref-5e1c", "hdr-ref-77a1c3"]:
        assert secret not in shown.stdout + shown.stderr
