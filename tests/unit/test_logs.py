import json
import logging

from gateway.logs import JsonFormatter, scrub


def test_scrub_masks_every_kind_of_secret() -> None:
    text = (
        "Credential=AKIAIOSFODNN7EXAMPLE/20261123/us-east-1/personalize/aws4_request, "
        "SignedHeaders=host, Signature=0123456789abcdef0123 "
        "X-Amz-Security-Token: FQoGZXIvYXdzEXAMPLETOKEN aws_secret_access_key='wJalrXUtnFEMI' "
        "key ASIAABCDEFGHIJKLMNOP"
    )
    clean = scrub(text)
    for secret in (
        "IOSFODNN7",
        "0123456789abcdef",
        "FQoGZXIv",
        "wJalrXUtnFEMI",
        "ABCDEFGHIJKLMNOP",
    ):
        assert secret not in clean
    assert "SignedHeaders=host" in clean


def test_json_lines_with_extra_fields() -> None:
    record = logging.LogRecord("gateway.rpc", logging.WARNING, "f", 1, "rpc failed", (), None)
    record.method = "GetRecommendations"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning"
    assert line["msg"] == "rpc failed"
    assert line["method"] == "GetRecommendations"
