"""Just enough of a TOML writer for a settings tree: strings, numbers, booleans, arrays, tables and arrays
of tables. Python reads TOML (tomllib) but does not write it, and the kit's configuration is the only
TOML the broadcaster writes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

_BARE_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def document(data: Mapping[str, Any], *, comment: str = "") -> str:
    """`data` as a TOML document (None values left out), after `comment` lines."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    _table(lines, data, ())
    return "\n".join(lines).strip("\n") + "\n"


def _table(lines: list[str], table: Mapping[str, Any], path: tuple[str, ...]) -> None:
    for key, value in table.items():
        if value is not None and not _is_table(value) and not _is_table_array(value):
            lines.append(f"{_key(key)} = {_inline(value)}")
    for key, value in table.items():
        inner = (*path, key)
        if _is_table(value):
            lines += ["", f"[{_dotted(inner)}]"]
            _table(lines, value, inner)
        elif _is_table_array(value):
            for item in value:
                lines += ["", f"[[{_dotted(inner)}]]"]
                _table(lines, item, inner)


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, Mapping) for item in value)


def _inline(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # TOML writes inf and nan as Python does
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        pairs = [f"{_key(key)} = {_inline(item)}" for key, item in value.items() if item is not None]
        return "{ " + ", ".join(pairs) + " }" if pairs else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline(item) for item in value) + "]"
    raise TypeError(f"TOML cannot hold a {type(value).__name__}")


def _string(text: str) -> str:
    # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped and JSON leaves raw.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(_key(part) for part in path)
