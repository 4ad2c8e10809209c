"""The kit's virtualenv, built on this machine so that every wheel fits it.

The broadcaster project (found where this very package was loaded from: an editable install or a source
checkout) and its runtime dependencies become wheels in <DIR>/wheels, pinned to the versions running here,
which the tests passed with; the venv is then installed from those wheels alone (--no-index), so it can be
rebuilt later without a network. The venv is made without pip of its own: this interpreter's pip installs
into it (`pip --python`), which saves the seconds ensurepip takes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Final

import broadcaster
from broadcaster.domain.text import printable
from broadcaster.kit.steps import KitError

PROJECT: Final = "broadcaster"
BUILD_TOOLS: Final = frozenset({"pip", "setuptools", "wheel", PROJECT})
"""Left unpinned: the project's build asks for its own setuptools, and the project is what is built."""
SOURCE_LEFT_OUT: Final = frozenset({".git", ".venv", "build", "dist", "var", "public", "tests", "docs"})
PIP_TIMEOUT: Final = 900.0
"""Seconds for one pip run: building wheels on a slow laptop, downloading what its cache lacks."""
QUICK_TIMEOUT: Final = 120.0
PYTHON_PATHS: Final = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "VIRTUAL_ENV")
"""Left out of the environment of what the kit runs: another tree on the path (a checkout's egg-info) would
look like an installed broadcaster to pip, which would then install none into the venv."""
SHOWN_LINES: Final = 12
"""Lines of a failed command's output shown with the failure."""


def project_source() -> Path:
    """The source tree of the running broadcaster: the directory holding its pyproject.toml."""
    root = Path(broadcaster.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    try:
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        name = None
    if name != PROJECT:
        raise KitError(
            f"the running broadcaster was not installed from its source ({root} has no broadcaster pyproject.toml), "
            "so its wheel cannot be built here; install it with `pip install -e <source>` and run the kit again"
        )
    return root


def build_wheels(wheels: Path, *, leave_out: Path) -> int:
    """Wheels of the project and of its runtime dependencies, pinned to the versions installed here, into
    `wheels`; returns how many there are. The project is built from a copy of its source, so the build
    neither writes into the checkout nor picks up a stale file from its build/ directory; `leave_out` (the
    kit, which may lie inside the checkout) is not copied."""
    wheels.mkdir(parents=True, exist_ok=True)
    constraints = wheels / "constraints.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in installed_versions()))
    with tempfile.TemporaryDirectory(prefix="broadcaster-kit-source-") as scratch:
        root, source = project_source(), Path(scratch) / PROJECT
        shutil.copytree(root, source, ignore=_not_for_the_wheel(root, leave_out.resolve()))
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels)]
        run([*pip, "--constraint", str(constraints), str(source)], what="pip wheel", timeout=PIP_TIMEOUT)
    return len(list(wheels.glob("*.whl")))


def installed_versions() -> list[tuple[str, str]]:
    """(name, version) of every distribution installed here, but the build tools and the project itself."""
    found: dict[str, str] = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"]
        if name and distribution.version and name.lower() not in BUILD_TOOLS:
            found.setdefault(name.lower(), distribution.version)
    return sorted(found.items())


def _not_for_the_wheel(root: Path, leave_out: Path) -> Callable[[str, list[str]], set[str]]:
    """What copytree leaves out: caches anywhere, `leave_out`, and at the top what the wheel never holds."""

    def ignored(directory: str, names: list[str]) -> set[str]:
        here = Path(directory).resolve()
        return {
            name
            for name in names
            if name == "__pycache__"
            or name.endswith((".egg-info", ".pyc"))
            or (here == root and (name.startswith(".") or name in SOURCE_LEFT_OUT))
            or here / name == leave_out
        }

    return ignored


def make_venv(venv: Path, wheels: Path) -> str:
    """A fresh venv at `venv` with the broadcaster installed from `wheels` alone; returns its version."""
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], what="python -m venv", timeout=QUICK_TIMEOUT)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-index"]
    run(
        [*install, "--find-links", str(wheels), "--constraint", str(wheels / "constraints.txt"), PROJECT],
        what="pip install --no-index",
        timeout=PIP_TIMEOUT,
    )
    answer = run([str(venv / "bin" / PROJECT), "--version"], what="broadcaster --version", timeout=QUICK_TIMEOUT)
    return answer.strip()


def schema_version(venv: Path) -> int | None:
    """The journal schema version the broadcaster in `venv` knows, asked of its own interpreter; None when
    it cannot say (no venv, or one too old to know)."""
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    ask = "from broadcaster.store.sqlite.schema import SCHEMA_VERSION; print(SCHEMA_VERSION)"
    try:
        return int(run([str(python), "-c", ask], what="the venv's schema version", timeout=QUICK_TIMEOUT))
    except (KitError, ValueError):
        return None


def run(command: Sequence[str], *, what: str, timeout: float) -> str:
    """Run `command`, returning its standard output; a KitError quoting the end of its output if it fails."""
    try:
        # The commands are this interpreter, its pip and the venv's own script, with paths as arguments.
        done = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=timeout, check=False, env=_clean_environment()
        )
    except subprocess.TimeoutExpired:
        raise KitError(f"{what} did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise KitError(f"{what} could not start: {exc.strerror}") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()][-SHOWN_LINES:]
        said = "\n".join(f"  {printable(line)}" for line in lines)
        raise KitError(f"{what} failed (exit {done.returncode}):\n{said}")
    return done.stdout


def _clean_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in PYTHON_PATHS}
