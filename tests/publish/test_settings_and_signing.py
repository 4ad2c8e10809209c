"""[[mirror.publish]] settings refused with a clear reason, and SigV4 signatures as AWS's own examples give them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.auth import S3SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials as BotocoreCredentials  # type: ignore[import-untyped]
from yarl import URL

from channels.mirror.publish.s3 import host_header
from channels.mirror.publish.sigv4 import Credentials, sign, uri_path
from config import ConfigError, load_settings
from tests.conftest import WriteConfig

# The examples of https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
EXAMPLE_KEYS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
EXAMPLE_TIME = datetime(2013, 5, 24, tzinfo=UTC)


def test_a_get_is_signed_as_the_aws_example() -> None:
    added = sign(
        method="GET",
        host="examplebucket.s3.amazonaws.com",
        path="/test.txt",
        headers={"Range": "bytes=0-9"},
        payload_sha256=hashlib.sha256(b"").hexdigest(),
        credentials=EXAMPLE_KEYS,
        region="us-east-1",
        now=EXAMPLE_TIME,
    )
    assert added["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_a_put_of_an_escaped_key_is_signed_as_the_aws_example() -> None:
    body = b"Welcome to Amazon S3."
    added = sign(
        method="PUT",
        host="examplebucket.s3.amazonaws.com",
        path=uri_path("/test$file.text"),
        headers={"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
        payload_sha256=hashlib.sha256(body).hexdigest(),
        credentials=EXAMPLE_KEYS,
        region="us-east-1",
        now=EXAMPLE_TIME,
    )
    assert added["Authorization"].endswith(
        "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    )


@pytest.mark.parametrize("key", ["status/a b.html", "status/ü.html", "a+b.html", "100%.html", "(x).html"])
@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", "http://[::1]:9000", "https://[2001:db8::5]"])
def test_a_put_is_signed_as_botocore_signs_it(key: str, endpoint: str) -> None:
    """moto takes any signature: botocore's S3SigV4Auth is the reference for keys that need escaping, and
    for the Host of an IPv6 endpoint."""
    body = b"<html></html>"
    url = URL(endpoint) / "status-site"
    path = uri_path(url.joinpath(key, encoded=False).path)
    payload = hashlib.sha256(body).hexdigest()
    theirs = AWSRequest(method="PUT", url=f"{endpoint}{path}", data=body, headers={"X-Amz-Content-SHA256": payload})
    S3SigV4Auth(BotocoreCredentials("AKIDEXAMPLE", "secret/key", "token"), "s3", "eu-west-1").add_auth(theirs)
    ours = sign(
        method="PUT",
        host=host_header(url),
        path=path,
        headers={},
        payload_sha256=payload,
        credentials=Credentials("AKIDEXAMPLE", "secret/key", "token"),
        region="eu-west-1",
        now=datetime.strptime(theirs.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC),
    )
    assert ours["Authorization"] == theirs.headers["Authorization"]


def test_credentials_never_show_in_their_repr() -> None:
    assert "EXAMPLE" not in repr(EXAMPLE_KEYS)


S3 = '[[mirror.publish]]\nkind = "s3"\nbucket = "status-site"\n'


@pytest.mark.parametrize(
    ("publish", "reason"),
    [
        (S3 + S3, "two [[mirror.publish]] targets are named 's3-status-site'"),
        (S3 + 'access_key_id = "AKIAEXAMPLE"\n', "give both access_key_id and secret_access_key"),
        ('[[mirror.publish]]\nkind = "ftp"\n', "'s3', 'git', 'sftp'"),
        ('[[mirror.publish]]\nkind = "git"\nremote = "git@example.com:o/r.git"\ntoken = "t0ken"\n', "https:// remote"),
        (
            '[[mirror.publish]]\nkind = "git"\nremote = "git@example.com:o/r.git"\n',
            "needs ssh_key_file and known_hosts",
        ),
        ('[[mirror.publish]]\nkind = "git"\nremote = "https://u:pw@example.com/o/r.git"\n', "use `token`"),
        (S3 + 'endpoint_url = "ftp://example.com"\n', "is not an http(s) endpoint"),
    ],
)
def test_a_bad_publish_target_is_refused_naming_what_is_wrong(
    write_config: WriteConfig, publish: str, reason: str
) -> None:
    path = write_config("[mirror]\n" + publish)
    with pytest.raises(ConfigError, match=r"\[mirror\] publish") as refused:
        load_settings(path)
    assert reason in str(refused.value)
    assert "pw" not in str(refused.value)


def test_each_publish_target_is_a_target_of_the_mirror_lane(write_config: WriteConfig, workdir: Path) -> None:
    path = write_config(
        '[mirror]\ndirectories = ["public"]\n' + S3 + '\n[[mirror.publish]]\nkind = "git"\nremote = "/srv/site.git"\n'
    )
    settings = load_settings(path)
    assert settings.mirror.target_names() == ["public", "publish:s3-status-site", "publish:git-srv-site.git-gh-pages"]
