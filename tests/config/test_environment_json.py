"""Lists and tables set from the environment are JSON: one that does not parse is a ConfigError naming
the variable and what is wrong, never echoing the value (it may hold a secret)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_settings

SECRET_URL = "https://hooks.example.com/services/T0/B0/sekrit"
NOT_SHOWN = "the value is not shown, as it may hold a secret"


def error() -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    return str(caught.value)


def test_a_nested_variable_that_is_not_json_is_named(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADCASTER_WEBHOOK__TARGETS", f'[{{"url": "{SECRET_URL}"')
    assert error() == (
        "environment variable BROADCASTER_WEBHOOK__TARGETS is not valid JSON "
        f"(Expecting ',' delimiter: line 1 column 59); {NOT_SHOWN}"
    )


def test_a_whole_section_that_is_not_json_is_named(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADCASTER_MIRROR", "{directories: public}")
    assert error() == (
        "environment variable BROADCASTER_MIRROR is not valid JSON "
        f"(Expecting property name enclosed in double quotes: line 1 column 2); {NOT_SHOWN}"
    )


def test_a_value_in_the_dotenv_file_that_is_not_json_names_the_file(workdir: Path) -> None:
    (workdir / ".env").write_text(f'BROADCASTER_WEBHOOK__TARGETS=[{{"url": "{SECRET_URL}"\n')
    text = error()
    assert (
        text
        == f".env: a value for [webhook] is not valid JSON (Expecting ',' delimiter: line 1 column 59); {NOT_SHOWN}"
    )
    assert "sekrit" not in text
