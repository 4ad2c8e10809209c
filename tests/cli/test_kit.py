"""`broadcaster kit DIR`: the fallback kit. One real kit (its venv built from wheels, as on a laptop) is made
for the module from a configuration full of secrets; the tests read it, refresh it, and refuse bad input.
The blackout rehearsal (tests/cli/test_blackout.py) posts from a kit."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from broadcaster.store.sqlite import SqliteStore
from broadcaster.store.sqlite.schema import SCHEMA_VERSION
from channels.mirror.publish.manifest import DESTINATION, fingerprint, held_by
from config import load_settings
from config.references import REFERENCE
from tests.support.helpers import run_cli
from tests.support.kit import fill_secrets, kit_variables
from tests.support.serve import serve_processes

X_SECRETS = {
    "consumer_key": "ck-kit-4c1f9a",
    "consumer_secret": "cs-kit-77d0e3b1",
    "access_token": "1650-at-kit-2b9e51",
    "access_token_secret": "ats-kit-90c4d7e2",
}
HOOK_TOKEN = "T0K3N-kit-hook-6e2a"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"kit-signing-key-0123456789abcdef").decode()
HEADER_TOKEN = "hdr-kit-tok-31f5c8"
RELAY_PASSWORD = "relay-kit-pw-8d4b"
UNSUBSCRIBE_SECRET = "unsub-kit-5a7e90c2"
API_TOKEN = "api-kit-tok-0e6f2d"
S3_KEY_ID, S3_SECRET = "AKIAKITPUBLISH0001", "s3-kit-secret-6b1d0f"
GIT_TOKEN = "ghp-kit-git-5e3a71"
DRILL_HOOK_TOKEN = "T0K3N-kit-drill-0c4b"
DRILL_SECRET = "whsec_" + base64.b64encode(b"kit-drill-signing-key-0123456789").decode()
SECRETS = [
    *X_SECRETS.values(),
    HOOK_TOKEN,
    SIGNING_SECRET,
    HEADER_TOKEN,
    RELAY_PASSWORD,
    UNSUBSCRIBE_SECRET,
    API_TOKEN,
    S3_SECRET,
    GIT_TOKEN,
    DRILL_HOOK_TOKEN,
    DRILL_SECRET,
]
MANIFEST = {"index.html": "3f1c2a", "api/v2/summary.json": "9b0e47"}
JOINED = "joined@example.org"
X_KEYS = "".join(f'{key} = "{value}"\n' for key, value in X_SECRETS.items())
SOURCE_CONFIG = f"""
[auth]
api_tokens = {{ kit-maker = "{API_TOKEN}" }}
snapshot_tokens = ["kit-maker"]
[x]
enabled = true
{X_KEYS}
[email]
enabled = true
host = "smtp.example.test"
security = "starttls"
username = "status"
password = "{RELAY_PASSWORD}"
from_addr = "Status <status@example.com>"
subscribers_file = "subscribers.txt"
unsubscribe_url = "https://status.example.com/unsubscribe"
unsubscribe_secret = "{UNSUBSCRIBE_SECRET}"
[webhook]
enabled = true
[[webhook.targets]]
name = "ops"
url = "https://hooks.example.test/services/{HOOK_TOKEN}"
secret = "{SIGNING_SECRET}"
headers = {{ Authorization = "Bearer {HEADER_TOKEN}" }}
[mirror]
page_title = "Example status"
[[mirror.publish]]
kind = "s3"
name = "bucket"
bucket = "status-kit"
endpoint_url = "https://s3.example.test"
access_key_id = "{S3_KEY_ID}"
secret_access_key = "{S3_SECRET}"
[[mirror.publish]]
kind = "git"
name = "pages"
remote = "https://git.example.test/ops/status.git"
token = "{GIT_TOKEN}"
[[mirror.publish]]
kind = "sftp"
name = "backup"
host = "backup.example.test"
username = "status"
key_file = "/etc/broadcaster/sftp_key"
known_hosts = "/etc/broadcaster/known_hosts"
path = "/srv/status"
[drill]
email_recipients = ["drill@example.net"]
mirror_directory = "drill-site"
[[drill.webhook_targets]]
name = "drill"
url = "https://hooks.example.test/drill/{DRILL_HOOK_TOKEN}"
secret = "{DRILL_SECRET}"
[network]
resolve = {{ "hooks.example.test" = "127.0.0.1:9" }}
[retry.webhook]
max_attempts = 2
"""
MIRROR_ONLY = ("--channel", "mirror")


def post(cwd: Path, title: str) -> str:
    """Open an incident in `cwd`'s journal (on the mirror alone, and not published: the other channels and
    the publish targets point nowhere); its id."""
    sent = run_cli(
        *("send", "--title", title, "--status", "investigating", "--message", "Errors.", *MIRROR_ONLY, "--json"),
        cwd=cwd,
        env={"BROADCASTER_MIRROR__PUBLISH": "[]"},
    )
    assert sent.returncode == 0, sent.stderr
    incident_id: str = json.loads(sent.stdout)["incident_id"]
    return incident_id


def make_kit(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("kit", *args, cwd=cwd, env=env)


def refresh_from(url: str, kit: Path, *, token: str) -> subprocess.CompletedProcess[str]:
    """`kit --refresh KIT --from URL --token-env KIT_TOKEN`, with `token` in KIT_TOKEN."""
    return make_kit(
        kit.parent, "--refresh", str(kit), "--from", url, "--token-env", "KIT_TOKEN", env={"KIT_TOKEN": token}
    )


def incident_ids(journal: Path) -> set[str]:
    with sqlite3.connect(journal) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM incidents")}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service's directory: its configuration, subscribers and journal with one incident."""
    directory = tmp_path_factory.mktemp("service")
    (directory / "broadcaster.toml").write_text(SOURCE_CONFIG)
    (directory / "subscribers.txt").write_text("ann@example.org\nbob@example.org\n")
    post(directory, "Checkout errors")
    assert run_cli("subscribers", "add", JOINED, cwd=directory).returncode == 0
    asyncio.run(_save_manifest(directory / "var" / "broadcaster.db"))
    return directory


async def _save_manifest(journal: Path) -> None:
    """What the mirror records once it published to the s3 target."""
    store = SqliteStore(journal, url=f"sqlite:///{journal}")
    await store.open()
    try:
        await store.save_publish_manifest("publish:bucket", MANIFEST)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def kit(source: Path) -> Path:
    """A kit made from `source`, venv and all."""
    made = make_kit(source, str(source / "kit"))
    assert made.returncode == 0, made.stderr
    return source / "kit"


def kit_environment(kit: Path) -> dict[str, str]:
    """Every variable secrets.env.example lists, filled with the secret of the key it names."""
    source = load_settings(kit.parent / "broadcaster.toml")
    values = {
        "[x] consumer_key": X_SECRETS["consumer_key"],
        "[x] consumer_secret": X_SECRETS["consumer_secret"],
        "[x] access_token": X_SECRETS["access_token"],
        "[x] access_token_secret": X_SECRETS["access_token_secret"],
        "[email] password": RELAY_PASSWORD,
        "[email] unsubscribe_secret": UNSUBSCRIBE_SECRET,
        "[webhook] targets[0].url": source.webhook.targets[0].url,
        "[webhook] targets[0].secret": SIGNING_SECRET,
        "[webhook] targets[0].headers.Authorization": f"Bearer {HEADER_TOKEN}",
        "[mirror] publish[0].access_key_id": S3_KEY_ID,
        "[mirror] publish[0].secret_access_key": S3_SECRET,
        "[mirror] publish[1].token": GIT_TOKEN,
        "[drill] webhook_targets[0].url": source.drill.webhook_targets[0].url,
        "[drill] webhook_targets[0].secret": DRILL_SECRET,
    }
    return fill_secrets(kit, values)


def test_the_kit_holds_no_secret_in_clear(kit: Path) -> None:
    written = [path for path in kit.rglob("*") if path.is_file() and "wheels" not in path.relative_to(kit).parts]
    assert {path.name for path in written} >= {
        "broadcaster.toml",
        "secrets.env.example",
        "RUNBOOK.md",
        "broadcaster.db",
    }
    assert any(path.match("venv/bin/broadcaster") for path in written)
    for path in written:
        content = path.read_bytes()
        assert [secret for secret in SECRETS if secret.encode() in content] == [], path


def test_the_kit_configuration_is_the_effective_one_with_every_secret_a_reference(
    kit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = tomllib.loads((kit / "broadcaster.toml").read_text())
    assert written["store"] == {"url": f"sqlite:///{kit}/var/broadcaster.db"}
    assert written["service"]["data_dir"] == str(kit / "var")
    assert written["mirror"]["directories"] == [str(kit / "public")]
    assert written["drill"]["mirror_directory"] == str(kit / "drill-site")  # the drill from the kit stays in it
    assert written["email"]["subscribers_file"] == str(kit / "var" / "subscribers.txt")
    assert (kit / "var" / "subscribers.txt").read_text() == "ann@example.org\nbob@example.org\n"
    assert "auth" not in written  # the kit runs the CLI: no API token to fill in
    assert REFERENCE.fullmatch(written["x"]["consumer_key"])
    # Filled from the environment, the kit's settings are the service's, but for where things live.
    for name in list(os.environ):
        if name.startswith("BROADCASTER_"):
            monkeypatch.delenv(name)
    for name, value in kit_environment(kit).items():
        monkeypatch.setenv(name, value)
    mine, theirs = load_settings(kit / "broadcaster.toml"), load_settings(kit.parent / "broadcaster.toml")
    for section in ("x", "webhook", "network", "retry", "templates"):
        assert getattr(mine, section) == getattr(theirs, section), section
    # Every publish target's secrets come back, whatever its kind (a git token as an s3 key).
    assert mine.mirror.publish == theirs.mirror.publish
    assert mine.drill.webhook_targets == theirs.drill.webhook_targets
    assert mine.drill.email_recipients == theirs.drill.email_recipients
    assert mine.email.password == theirs.email.password
    assert mine.email.unsubscribe_secret == theirs.email.unsubscribe_secret
    assert mine.mirror.page_title == theirs.mirror.page_title


def test_secret_variables_are_named_by_their_targets_names(kit: Path) -> None:
    variables = kit_variables(kit)
    assert variables["[webhook] targets[0].secret"] == "FALLBACK_KIT_WEBHOOK_TARGETS_OPS_SECRET"
    assert variables["[mirror] publish[1].token"] == "FALLBACK_KIT_MIRROR_PUBLISH_PAGES_TOKEN"
    assert variables["[drill] webhook_targets[0].url"] == "FALLBACK_KIT_DRILL_WEBHOOK_TARGETS_DRILL_URL"


def test_the_journal_carries_subscribers_and_publish_manifests_for_its_owner_alone(kit: Path) -> None:
    journal = kit / "var" / "broadcaster.db"
    with sqlite3.connect(journal) as conn:
        assert conn.execute("SELECT kind, address FROM subscribers").fetchall() == [("email", JOINED)]
        (manifest,) = conn.execute("SELECT manifest FROM publish_manifests WHERE target = 'publish:bucket'").fetchone()
    restored = json.loads(manifest)
    assert {path: sha for path, sha in restored.items() if not path.startswith("/")} == MANIFEST
    # A publish from the kit trusts no manifest: it adds and overwrites, deleting nothing.
    assert held_by(restored, fingerprint(["s3", "anything"])) is None
    assert restored[DESTINATION] == "restored from a kit"
    assert stat.S_IMODE(kit.stat().st_mode) == 0o700
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    marker = json.loads((kit / "kit.json").read_text())
    assert marker["venv_schema"] == marker["snapshot"]["schema"] == SCHEMA_VERSION


def test_the_kit_venv_runs_the_cli_and_its_wheels_reinstall_offline(kit: Path) -> None:
    version = subprocess.run(
        [kit / "venv/bin/broadcaster", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.stdout.startswith("broadcaster "), version.stderr
    assert len(list((kit / "wheels").glob("broadcaster-*.whl"))) == 1
    runbook = (kit / "RUNBOOK.md").read_text()
    assert f"cd {kit}" in runbook and "broadcaster kit --refresh" in runbook and "drill" in runbook


def test_refresh_takes_a_new_snapshot(source: Path, kit: Path) -> None:
    newer = post(source, "Login failures")
    assert newer not in incident_ids(kit / "var" / "broadcaster.db")
    refreshed = make_kit(source, "--refresh", str(kit))
    assert refreshed.returncode == 0, refreshed.stderr
    assert newer in incident_ids(kit / "var" / "broadcaster.db")
    assert "kit [2/3] snapshot of the journal" in refreshed.stderr
    assert "(the same variables as before)" in refreshed.stderr


async def test_refresh_from_a_running_service_over_the_api(kit: Path, tmp_path: Path) -> None:
    """The service's email files travel in the snapshot: its subscribers file's subscribers and its
    suppression file's addresses, which this laptop does not have."""
    laptop = tmp_path / "laptop"
    shutil.copytree(kit.parent, laptop, symlinks=True, ignore=shutil.ignore_patterns("kit"))
    shutil.copytree(kit, laptop / "kit", symlinks=True)  # a kit of its own: the module's stays as it was
    service = tmp_path / "elsewhere"
    (service / "var").mkdir(parents=True)
    (service / "broadcaster.toml").write_text(
        f'[auth]\napi_tokens = {{ kit-maker = "{API_TOKEN}" }}\nsnapshot_tokens = ["kit-maker"]\n'
        '[email]\nsubscribers_file = "subscribers.txt"\n'
    )
    (service / "subscribers.txt").write_text("cat@example.org\n")
    (service / "var" / "email-suppressed.txt").write_text("dan@example.org\t2024-05-01T10:00:00Z\t550 no user\n")
    remote = post(service, "Only on the service")
    async with serve_processes(service) as [serving]:
        refused = refresh_from(serving.base, laptop / "kit", token="wrong")
        taken = refresh_from(serving.base, laptop / "kit", token=API_TOKEN)
    assert refused.returncode == 2
    assert "refused the token (HTTP 401)" in refused.stderr
    assert taken.returncode == 0, taken.stderr
    journal = laptop / "kit" / "var" / "broadcaster.db"
    assert remote in incident_ids(journal)
    with sqlite3.connect(journal) as conn:
        assert conn.execute("SELECT address, state ->> '$.source' FROM subscribers").fetchall() == [
            ("cat@example.org", "file")
        ]
        assert conn.execute("SELECT address, source FROM suppressions").fetchall() == [("dan@example.org", "file")]
    # The service's subscribers file is in the journal; no file of this laptop's stands in for it.
    assert "subscribers_file" not in tomllib.loads((laptop / "kit" / "broadcaster.toml").read_text())["email"]


def test_refresh_rebuilds_a_venv_too_old_for_the_journal(kit: Path, tmp_path: Path) -> None:
    laptop = tmp_path / "laptop"
    shutil.copytree(kit.parent, laptop, symlinks=True, ignore=shutil.ignore_patterns("kit"))
    shutil.copytree(kit, laptop / "kit", symlinks=True)
    (installed,) = (laptop / "kit" / "venv").glob("lib/python*/site-packages/broadcaster/store/sqlite/schema.py")
    older = installed.read_text().replace(f"SCHEMA_VERSION: Final = {SCHEMA_VERSION}\n", "SCHEMA_VERSION: Final = 1\n")
    assert older != installed.read_text()
    installed.write_text(older)  # the venv of a kit made by an older broadcaster
    refreshed = make_kit(laptop, "--refresh", str(laptop / "kit"))
    assert refreshed.returncode == 0, refreshed.stderr
    assert "kit [3/5] wheels of the broadcaster" in refreshed.stderr
    assert json.loads((laptop / "kit" / "kit.json").read_text())["venv_schema"] == SCHEMA_VERSION
    (rebuilt,) = (laptop / "kit" / "venv").glob("lib/python*/site-packages/broadcaster/store/sqlite/schema.py")
    assert f"SCHEMA_VERSION: Final = {SCHEMA_VERSION}\n" in rebuilt.read_text()


def test_a_journal_newer_than_this_broadcaster_is_refused(tmp_path: Path) -> None:
    post(tmp_path, "Checkout errors")
    with sqlite3.connect(tmp_path / "var" / "broadcaster.db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    refused = make_kit(tmp_path, str(tmp_path / "kit"))
    assert refused.returncode == 1
    assert f"the journal has schema version {SCHEMA_VERSION + 1}, newer than this broadcaster's" in refused.stderr
    assert not (tmp_path / "kit").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--refresh"], "is not a kit"),
        ([], "is neither empty nor a kit"),
        (["--from", "http://127.0.0.1:9"], "--from URL needs --token-env VAR"),
        (["--from", "ftp://example.com", "--token-env", "HOME"], "give the service's http(s) address"),
        (["--from", "http://status.example.com", "--token-env", "HOME"], "plain http would send the token"),
    ],
)
def test_bad_input_exits_2_and_leaves_the_directory_alone(tmp_path: Path, args: list[str], message: str) -> None:
    target = tmp_path / "papers"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    refused = make_kit(tmp_path, *args, str(target))
    assert refused.returncode == 2, refused.stderr
    assert message in refused.stderr
    assert [path.name for path in target.iterdir()] == ["notes.txt"]


def test_a_kit_is_not_made_twice(kit: Path) -> None:
    refused = make_kit(kit.parent, str(kit))
    assert refused.returncode == 2
    assert "is a kit already; `broadcaster kit --refresh" in refused.stderr


def test_a_failed_step_is_named_and_a_new_kit_is_removed(tmp_path: Path) -> None:
    refused = make_kit(tmp_path, str(tmp_path / "kit"))  # no journal here
    assert refused.returncode == 2
    assert "kit [2/5] snapshot of the journal ... failed" in refused.stderr
    assert "broadcaster: kit: snapshot of the journal: there is no journal at" in refused.stderr
    assert not (tmp_path / "kit").exists()
