"""AWS Signature Version 4 for S3 requests (the header form), as the S3 API reference specifies it:
https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html. Small and dependency-free,
so publishing to a bucket costs aiohttp and nothing else at start-up."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import quote

ALGORITHM: Final = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return "Credentials(…)"


def uri_path(key: str) -> str:
    """An object key as S3's canonical URI encodes it: each byte but unreserved ones and "/" escaped."""
    return quote(key, safe="/-_.~")


def sign(
    *,
    method: str,
    host: str,
    path: str,
    query: str = "",
    headers: Mapping[str, str],
    payload_sha256: str,
    credentials: Credentials,
    region: str,
    now: datetime,
) -> dict[str, str]:
    """The headers to add to a request: x-amz-date, x-amz-content-sha256, the session token if any, and
    Authorization. `path` is already URI-encoded (uri_path); `headers` are those to sign besides host."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    added = {"x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256}
    if credentials.session_token:
        added["x-amz-security-token"] = credentials.session_token
    signed = {"host": host, **{k.lower(): v.strip() for k, v in headers.items()}, **added}
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            path,
            query,
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _signing_key(credentials.secret_access_key, amz_date[:8], region)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    added["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )
    return added


def _signing_key(secret: str, date: str, region: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
