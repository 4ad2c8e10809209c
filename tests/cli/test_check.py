"""`broadcaster check`: a verdict per channel and target without messaging anyone, `--json` for monitoring
(checked against its schema here), exit 0 when all pass, 3 when any fails, 2 for bad configuration."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft202012Validator

from tests.support.helpers import run_cli

CHECK_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["ok", "checked_at", "results"],
    "additionalProperties": False,
    "properties": {
        "ok": {"type": "boolean"},
        "checked_at": {"type": "string", "format": "date-time"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["channel", "target", "verdict", "detail"],
                "additionalProperties": False,
                "properties": {
                    "channel": {"enum": ["journal", "email", "x", "webhook", "mirror"]},
                    "target": {"type": "string", "minLength": 1},
                    "verdict": {"enum": ["ok", "failed", "skipped"]},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}


def checked(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("check", "--json", *args, cwd=tmp_path)
    body: dict[str, Any] = json.loads(result.stdout)
    Draft202012Validator(CHECK_SCHEMA).validate(body)
    assert datetime.fromisoformat(body["checked_at"]).utcoffset() is not None  # what "date-time" promises
    return result.returncode, body


def test_check_json_passes_its_schema_and_says_ok_with_exit_0(tmp_path: Path) -> None:
    code, body = checked(tmp_path)
    assert (code, body["ok"]) == (0, True)
    verdicts = {r["channel"]: r["verdict"] for r in body["results"]}
    assert verdicts == {"journal": "ok", "mirror": "ok", "email": "skipped", "x": "skipped", "webhook": "skipped"}


def test_a_failing_channel_is_exit_3_and_ok_false(tmp_path: Path) -> None:
    (tmp_path / "public").write_text("a file where the mirror's directory should be")
    code, body = checked(tmp_path)
    assert (code, body["ok"]) == (3, False)
    [mirror] = [r for r in body["results"] if r["channel"] == "mirror"]
    assert mirror["verdict"] == "failed"
    assert mirror["detail"].startswith("not writable")


def test_bad_configuration_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "broadcaster.toml").write_text("[service]\ncheck_interval = -1\n")
    result = run_cli("check", "--json", cwd=tmp_path)
    assert result.returncode == 2
    assert "check_interval" in result.stderr
