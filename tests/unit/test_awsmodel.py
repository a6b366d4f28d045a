import pytest

from gateway.awsmodel import input_validator, render_aws_path


def violations(service: str, op: str, params: dict[str, object]) -> dict[str, str]:
    found = input_validator(service, op).validate(params)
    return {render_aws_path(v.path): v.description for v in found}


def test_valid_request_has_no_violations() -> None:
    params = {"campaignArn": "arn:aws:personalize:us-east-1:1:campaign/x", "userId": "u"}
    assert violations("personalize-runtime", "GetRecommendations", params) == {}


def test_every_kind_of_rule_is_checked() -> None:
    found = violations(
        "personalize-runtime",
        "GetRecommendations",
        {
            "campaignArn": "not-an-arn",
            "numResults": -1,
            "context": {str(i): "v" for i in range(151)},
            "promotions": [{"name": " bad", "filterValues": {"k": "v"}}],
            "userId": "u" * 257,
        },
    )
    assert set(found) == {"campaignArn", "numResults", "context", "promotions[0].name", "userId"}
    assert "pattern" in found["campaignArn"]
    assert found["numResults"] == "must be at least 0"
    assert found["context"] == "must have at most 150 entries"
    assert found["userId"] == "must be at most 256 characters long"


def test_required_enum_and_union() -> None:
    found = violations(
        "bedrock",
        "ListModelInvocationJobs",
        {"statusEquals": "Running", "maxResults": 1001},
    )
    assert found["statusEquals"].startswith("must be one of")
    assert found["maxResults"] == "must be at most 1000"
    found = violations("bedrock", "CreateModelInvocationJob", {"inputDataConfig": {}})
    assert found["inputDataConfig"] == "must set exactly one member"
    for member in ("jobName", "roleArn", "modelId", "outputDataConfig"):
        assert found[member] == "is required"


@pytest.mark.parametrize(
    ("key", "ok"),
    [("team", True), ("équipe 1", True), ("a@b:c/d", True), ("bad#key", False)],
)
def test_java_unicode_classes_are_enforced(key: str, ok: bool) -> None:
    """Personalize tag keys use \\p{L}\\p{Z}\\p{N}, which Python's re cannot parse as is."""
    found = violations(
        "personalize", "CreateBatchInferenceJob", {"tags": [{"tagKey": key, "tagValue": "v"}]}
    )
    assert ("tags[0].tagKey" not in found) is ok


def test_dot_does_not_match_a_newline_as_in_java() -> None:
    arn = "arn:aws:personalize:us-east-1:1:campaign/\nx"
    found = violations("personalize-runtime", "GetRecommendations", {"campaignArn": arn})
    assert "pattern" in found["campaignArn"]
