"""A misspelt BROADCASTER_ variable is a configuration error, as a misspelt key in the file is, in the
environment or in .env; variables that are not meant as settings (BROADCASTER_CONFIG, a test's own, one the
file refers to, the ones Kubernetes gives a pod for a Service named broadcaster) are left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_settings
from tests.conftest import WriteConfig
from tests.support.channels import GATE_ENV, SINK_ENV
from tests.support.helpers import run_cli

HINT = "settings are BROADCASTER_<SECTION>__<KEY>, two underscores between section and key"


@pytest.mark.parametrize(
    ("name", "nearest"),
    [
        ("BROADCASTER_EMAIL_PASSWORD", "BROADCASTER_EMAIL__PASSWORD"),
        ("BROADCASTER_MIROR__DIRECTORIES", "BROADCASTER_MIRROR__DIRECTORIES"),
        ("BROADCASTER_STORAGE__URL", "BROADCASTER_STORE__URL"),
        ("broadcaster_webhook_enabled", "BROADCASTER_WEBHOOK__ENABLED"),
        ("BROADCASTER_STORE_URL", "BROADCASTER_STORE__URL"),
        ("BROADCASTER_EMAIL__PASWORD", "BROADCASTER_EMAIL__PASSWORD"),
        ("BROADCASTER_RETRY__WEBHOOK__MAX_ATEMPTS", "BROADCASTER_RETRY__WEBHOOK__MAX_ATTEMPTS"),
        # A section within a section: the hint names the drill account's key, never the live account's.
        ("BROADCASTER_DRILL__X__ACESS_TOKEN", "BROADCASTER_DRILL__X__ACCESS_TOKEN"),
    ],
)
def test_a_misspelt_variable_exits_2_naming_it_and_the_nearest(tmp_path: Path, name: str, nearest: str) -> None:
    result = run_cli("status", cwd=tmp_path, env={name: "sekrit-value"})
    assert result.returncode == 2
    assert result.stderr == (
        f"broadcaster: configuration error: environment variable {name}: no such setting "
        f"(did you mean {nearest!r}?); {HINT}\n"
    )


def test_correct_variables_and_the_config_path_are_accepted(write_config: WriteConfig, tmp_path: Path) -> None:
    path = write_config("[mirror]\npage_title = 'Example status'\n", name="site.toml")
    env = {
        "BROADCASTER_CONFIG": str(path),
        "BROADCASTER_EMAIL__PASSWORD": "pw",
        "BROADCASTER_EMAIL__USERNAME": "me",
        "BROADCASTER_MIRROR__DIRECTORIES": '["site"]',
        "BROADCASTER_RETRY__WEBHOOK__MAX_ATTEMPTS": "3",
    }
    result = run_cli("config", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert '"page_title": "Example status"' in result.stdout
    assert '"site"' in result.stdout


def test_variables_that_are_not_settings_are_left_alone(tmp_path: Path) -> None:
    """The test channels' own variables, and names that resemble no section."""
    env = {GATE_ENV: "/nonexistent", SINK_ENV: "/nonexistent", "BROADCASTER_HOME": "/srv", "BROADCASTER_LOG": "x"}
    result = run_cli("config", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr


def test_a_variable_the_file_refers_to_is_not_taken_for_a_misspelt_setting(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROADCASTER_EMAIL_PASSWORD", "x")
    with pytest.raises(ConfigError, match="BROADCASTER_EMAIL_PASSWORD: no such setting"):
        load_settings(write_config("[mirror]\npage_title = 'Status'\n"))
    # Referred to, it is the file's own name for a value (whether and how it is expanded is not this check's job).
    assert load_settings(write_config("[mirror]\npage_title = '${BROADCASTER_EMAIL_PASSWORD}'\n")).mirror.enabled


# What a deployment sets: Kubernetes' service links for Services named broadcaster, broadcaster-mirror and
# broadcaster-web, and names of a deployment's own that resemble no setting closely.
DEPLOYMENT_NAMES = [
    "BROADCASTER_SERVICE_HOST",
    "BROADCASTER_SERVICE_PORT",
    "BROADCASTER_SERVICE_PORT_HTTP",
    "BROADCASTER_PORT",
    "BROADCASTER_PORT_8080_TCP",
    "BROADCASTER_PORT_8080_TCP_PROTO",
    "BROADCASTER_PORT_8080_TCP_PORT",
    "BROADCASTER_PORT_8080_TCP_ADDR",
    "BROADCASTER_MIRROR_SERVICE_HOST",
    "BROADCASTER_MIRROR_SERVICE_PORT",
    "BROADCASTER_MIRROR_PORT",
    "BROADCASTER_MIRROR_PORT_80_TCP_ADDR",
    "BROADCASTER_WEB_SERVICE_HOST",
    "BROADCASTER_TOKEN",
    "BROADCASTER_SECRET",
    "BROADCASTER_AUTH_TOKEN",
]


@pytest.mark.parametrize("name", DEPLOYMENT_NAMES)
def test_names_a_deployment_sets_are_left_alone(workdir: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "10.0.0.7")
    assert load_settings(None).mirror.enabled


def test_a_pod_with_every_service_link_starts(tmp_path: Path) -> None:
    result = run_cli("config", cwd=tmp_path, env=dict.fromkeys(DEPLOYMENT_NAMES, "tcp://10.0.0.7:8080"))
    assert result.returncode == 0, result.stderr


def test_a_misspelt_variable_in_the_dotenv_file_exits_2_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BROADCASTER_SERVICE_HOST=10.0.0.7\nBROADCASTER_EMAIL_PASSWORD=sekrit-value\n")
    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "broadcaster: configuration error: .env: variable BROADCASTER_EMAIL_PASSWORD: no such setting "
        f"(did you mean 'BROADCASTER_EMAIL__PASSWORD'?); {HINT}\n"
    )


def test_correct_variables_in_the_dotenv_file_are_accepted(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('BROADCASTER_MIRROR__PAGE_TITLE="From dotenv"\nBROADCASTER_PORT=tcp://10.0.0.7:80\n')
    result = run_cli("config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"page_title": "From dotenv"' in result.stdout
