"""URL masking and log redaction: secrets go, everything else stays exactly as it was."""

from __future__ import annotations

import pytest

from reclaim.config import mask_url, redact
from reclaim.config.secrets import mask_options, redact_log


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://gc:pw@db/archive", "postgresql+psycopg://gc:***@db/archive"),
        ("postgresql+psycopg://gc:p@ss/w?rd@db:5432/x", "postgresql+psycopg://gc:***@db:5432/x"),
        (
            "postgresql+psycopg://gc@db/x?password=pw&sslmode=require",
            "postgresql+psycopg://gc@db/x?password=***&sslmode=require",
        ),
        (
            "postgresql://db/x?sslmode=verify-full&sslpassword=pw",
            "postgresql://db/x?sslmode=verify-full&sslpassword=***",
        ),
        (
            "mysql+pymysql://root@h/d?pass=a&pwd=b&charset=utf8",
            "mysql+pymysql://root@h/d?pass=***&pwd=***&charset=utf8",
        ),
        ("az://c/p?sv=2020&sig=abc%2Fdef&se=2030", "az://c/p?sv=2020&sig=***&se=2030"),
        ("s3://b/p?access_key=AK&secret_key=SK&token=T", "s3://b/p?access_key=***&secret_key=***&token=***"),
        ("sqlite:////srv/app.sqlite", "sqlite:////srv/app.sqlite"),
        ("s3://bucket/key?versionId=3", "s3://bucket/key?versionId=3"),
        ("file:///srv/blobs", "file:///srv/blobs"),
    ],
)
def test_urls_lose_their_credentials_only(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert mask_url(f"catalog {url}: failed") == f"catalog {shown}: failed"


def test_text_without_secrets_is_left_alone() -> None:
    for text in ("_hash/hoa/q4gfwyb36leozblzmove7vxqha", '{"key": "a/b", "token_count": 3}', "key 'x': gone"):
        assert redact(text) == text


def test_storage_options_are_masked_at_any_depth() -> None:
    options = {
        "key": "AK",
        "anon": False,
        "client_kwargs": {"endpoint_url": "http://h", "aws_session_token": "T", "region_name": "r"},
        "account_key": "K",
        "sas_token": "S",
        "connection_string": "C",
        "client_secret": "CS",
    }
    assert mask_options(options) == {
        "key": "***",
        "anon": False,
        "client_kwargs": {"endpoint_url": "http://h", "aws_session_token": "***", "region_name": "r"},
        "account_key": "***",
        "sas_token": "***",
        "connection_string": "***",
        "client_secret": "***",
    }


def test_log_redaction_masks_what_botocore_prints() -> None:
    line = (
        "Sending http request: <AWSPreparedRequest url=http://h/b, headers={'X-Amz-Security-Token': "
        "b'FQoGZXIvYXdzEJr', 'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/"
        "us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0a1b2c3d4e'}>"
    )
    masked = redact_log(line)
    for secret in ("FQoGZXIvYXdzEJr", "AKIAIOSFODNN7EXAMPLE", "0a1b2c3d4e"):
        assert secret not in masked
    assert "Sending http request" in masked
    assert "x-amz-security-token:***" in redact_log("x-amz-security-token:FQoGZXIvYXdzEJr\nhost:h")
