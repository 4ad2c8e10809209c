"""[[mirror.publish]]: where the status site is published off this box (a bucket, a git pages branch, a
second host), each its own target of the mirror lane, named `publish:<name>`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from config.sections import Section

NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""A target's name is a directory under <data_dir>/publish and part of its ledger name."""
_UNNAMEABLE: Final = re.compile(r"[^A-Za-z0-9._-]+")
_SCP_LIKE: Final = re.compile(r"^(?:[^@/:\s]+@)?(?P<host>[^@/:\s]+):(?!//)(?P<path>\S+)$")

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Seconds = Annotated[float, Field(gt=0, le=600)]


def derived_name(kind: str, *parts: str) -> str:
    """A stable, secret-free default name from what identifies the target."""
    text = "-".join(part for part in (kind, *parts) if part)
    return _UNNAMEABLE.sub("-", text).strip("-._")[:64] or kind


class S3Target(Section):
    """Any S3-compatible store. Without access_key_id and secret_access_key, the standard AWS chain applies as
    far as it goes without the AWS SDK: the AWS_* environment variables, then the shared credentials file's
    profile (no instance role, no SSO, no credential_process)."""

    kind: Literal["s3"]
    name: Name | None = None
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    prefix: str = Field(default="", description='Key prefix for every file, e.g. "status/"; "" = the bucket root.')
    endpoint_url: str = Field(
        default="",
        description="The store's endpoint for anything but AWS (R2, B2, MinIO, GCS interop), e.g. "
        "https://<account>.r2.cloudflarestorage.com; keys are then addressed path-style.",
    )
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{1,32}$")
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    timeout: Seconds = Field(default=20.0, description="Seconds for one request, connection included.")
    concurrency: Annotated[int, Field(ge=1, le=64)] = Field(default=8, description="Uploads in flight at once.")

    @property
    def label(self) -> str:
        return self.name or derived_name("s3", self.bucket, self.prefix)

    @property
    def destination(self) -> tuple[str, ...]:
        """What the published site's place depends on: a change means a new place, published afresh."""
        return ("s3", self.endpoint_url, self.region, self.bucket, self.prefix)

    @field_validator("prefix")
    @classmethod
    def _relative_prefix(cls, value: str) -> str:
        value = value.strip().lstrip("/")
        return value if not value or value.endswith("/") else value + "/"

    @field_validator("endpoint_url")
    @classmethod
    def _http_endpoint(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
                raise ValueError(f"{value!r} is not an http(s) endpoint (no credentials in it)")
            if len(parts.path) > 0:
                raise ValueError(f"{value!r}: the endpoint takes no path (the bucket goes in `bucket`)")
        return value

    @model_validator(mode="after")
    def _both_keys_or_neither(self) -> S3Target:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither (the AWS chain)")
        return self


def _remote_place(remote: str) -> str:
    """A remote's host and repository path, or a local repository's path: two repositories of one host get
    two names (and two ledgers)."""
    if scp := _SCP_LIKE.match(remote):
        return f"{scp['host']}-{scp['path']}"
    if remote.startswith("file://") or "://" not in remote:
        return remote.removeprefix("file://").strip("/")
    parts = urlsplit(remote)
    return f"{parts.hostname or ''}-{parts.path.strip('/')}"


class GitTarget(Section):
    """A branch of a git remote served as pages (GitHub, GitLab or Codeberg Pages): one commit per
    publish, force-pushed, the branch squashed to one commit once it holds more than keep_commits."""

    kind: Literal["git"]
    name: Name | None = None
    remote: str = Field(
        description='"https://host/owner/repo.git" (with `token`), "ssh://git@host/owner/repo.git" or '
        '"git@host:owner/repo.git" (with `ssh_key_file` and `known_hosts`), or a local path.'
    )
    branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")] = "gh-pages"
    token: SecretStr | None = Field(
        default=None, description="An HTTPS access token, sent in a header (never in a URL or a command line)."
    )
    token_user: str = Field(
        default="x-access-token",
        description='The user name sent with the token: "x-access-token" (GitHub), "oauth2" (GitLab), yours '
        "(Codeberg).",
    )
    ssh_key_file: Path | None = None
    known_hosts: Path | None = Field(default=None, description="The remote's pinned host key (ssh remotes).")
    keep_commits: Annotated[int, Field(ge=1, le=10_000)] = 50
    author: str = "broadcaster <broadcaster@localhost>"
    timeout: Seconds = Field(default=60.0, description="Seconds for one git command (a fetch, a push).")

    @property
    def transport(self) -> Literal["https", "ssh", "local"]:
        if self.remote.startswith(("https://", "http://")):
            return "https"
        if self.remote.startswith("ssh://") or _SCP_LIKE.match(self.remote):
            return "ssh"
        return "local"

    @property
    def label(self) -> str:
        return self.name or derived_name("git", _remote_place(self.remote), self.branch)

    @property
    def destination(self) -> tuple[str, ...]:
        """What the published site's place depends on: a change means a new place, published afresh."""
        return ("git", self.remote, self.branch)

    @field_validator("remote")
    @classmethod
    def _usable_remote(cls, value: str) -> str:
        value = value.strip()
        if "://" in value:
            parts = urlsplit(value)
            if parts.scheme not in ("https", "http", "ssh", "file"):
                raise ValueError(f"{parts.scheme}:// remotes are not supported (https, ssh, file or a path)")
            if parts.password is not None or (parts.scheme.startswith("http") and parts.username):
                raise ValueError("credentials do not go in the remote URL: use `token` (or `ssh_key_file`)")
        elif not value.startswith("/") and not _SCP_LIKE.match(value):
            raise ValueError(f"{value!r} is not a git remote (https://..., ssh://..., user@host:path or /path)")
        return value

    @model_validator(mode="after")
    def _credentials_fit_transport(self) -> GitTarget:
        if self.token is not None and not self.remote.startswith("https://"):
            raise ValueError("a token is sent only to an https:// remote")
        if self.transport == "ssh" and (self.ssh_key_file is None or self.known_hosts is None):
            raise ValueError("an ssh remote needs ssh_key_file and known_hosts (the remote's host key, pinned)")
        if self.transport != "ssh" and self.ssh_key_file is not None:
            raise ValueError("ssh_key_file applies only to an ssh remote")
        return self


class SftpTarget(Section):
    """A second host over SSH: files go to a temporary name and are renamed into place."""

    kind: Literal["sftp"]
    name: Name | None = None
    host: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9.:_-]+$")]
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    username: Annotated[str, Field(min_length=1)]
    key_file: Path
    known_hosts: Path = Field(description="The host's pinned key, in OpenSSH known_hosts format; others refused.")
    path: Annotated[str, Field(min_length=1)] = Field(description="The site's directory on the host.")
    timeout: Seconds = Field(default=20.0, description="Seconds to connect, and for each file operation.")
    concurrency: Annotated[int, Field(ge=1, le=64)] = Field(default=8, description="Uploads in flight at once.")

    @property
    def label(self) -> str:
        return self.name or derived_name("sftp", self.host)

    @property
    def destination(self) -> tuple[str, ...]:
        """What the published site's place depends on: a change means a new place, published afresh."""
        return ("sftp", self.host, str(self.port), self.path)


PublishTarget = Annotated[S3Target | GitTarget | SftpTarget, Field(discriminator="kind")]


def target_name(target: S3Target | GitTarget | SftpTarget) -> str:
    """The target's name in the mirror lane and the ledger."""
    return f"publish:{target.label}"


def unique_labels(targets: list[S3Target | GitTarget | SftpTarget]) -> list[S3Target | GitTarget | SftpTarget]:
    labels = [target.label for target in targets]
    for label in labels:
        if labels.count(label) > 1:
            raise ValueError(f"two [[mirror.publish]] targets are named {label!r}: give one a distinct `name`")
    return targets
