"""Reading a fallback kit the way its commander does: which variable fills which key (secrets.env.example)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def kit_variables(kit: Path) -> dict[str, str]:
    """key (as "[x] consumer_key") -> the variable secrets.env.example names for it."""
    lines = (kit / "secrets.env.example").read_text().splitlines()
    return {
        line.removeprefix("# ").split(" (")[0]: lines[n + 1].removesuffix("=")
        for n, line in enumerate(lines)
        if line.startswith("# [")
    }


def fill_secrets(kit: Path, values: Mapping[str, str]) -> dict[str, str]:
    """The environment a commander sets from the password manager: each listed variable with the value of
    the key it fills. Every key must be given a value, and nothing else."""
    variables = kit_variables(kit)
    assert set(variables) == set(values), sorted(set(variables) ^ set(values))
    return {variables[key]: value for key, value in values.items()}
