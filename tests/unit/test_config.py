import dataclasses
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Config, ConfigError
from gateway.limits_config import GroupLimit, Limit


def test_defaults_need_no_file() -> None:
    config = Config.load(None)
    assert config.server.port == 50051
    assert config.upstream.region is None  # left to botocore's resolution
    assert config.upstream.max_pool_connections > 10  # not botocore's default


def test_file_overrides_and_coerces(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        "[server]\nport = 6000\ngrace_seconds = 3\n"
        '[upstream]\nregion = "eu-west-1"\nendpoints = {"bedrock" = "http://127.0.0.1:1"}\n'
    )
    config = Config.load(path)
    assert config.server.port == 6000
    assert config.server.grace_seconds == 3.0
    assert isinstance(config.server.grace_seconds, float)
    assert config.upstream.region == "eu-west-1"
    assert config.upstream.endpoints == {"bedrock": "http://127.0.0.1:1"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"server": {"prot": 1}}, "server.prot = 1: unknown setting (known: host, port,"),
        ({"sever": {}}, "sever = a table: unknown setting (known: server, upstream,"),
        ({"server": {"port": "80"}}, 'server.port = "80": must be an integer from 0 to 65535'),
        ({"server": {"workers": True}}, "server.workers = true: must be an integer >= 1"),
        ({"server": 3}, "server = 3: must be a table"),
    ],
)
def test_mistakes_are_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(data)
    assert str(caught.value).startswith(message)


#: Issue 10 item 11 (and item 7's default deadline): values that were accepted silently.
#: Each: the document, then the one line the user must see (key = value: what is allowed).
REFUSED = [
    ({"server": {"port": -5}}, "server.port = -5: must be an integer from 0 to 65535"),
    ({"server": {"workers": 0}}, "server.workers = 0: must be an integer >= 1"),
    (
        {"logging": {"level": "LOUD"}},
        'logging.level = "LOUD": must be one of CRITICAL, FATAL, ERROR, WARN, WARNING, INFO, '
        "DEBUG, NOTSET (any case)",
    ),
    (
        {"upstream": {"endpoints": {"bedrock": 5}}},
        "upstream.endpoints.bedrock = 5: must be an http:// or https:// URL",
    ),
    (
        {"upstream": {"default_deadline_seconds": 300}},
        "upstream.default_deadline_seconds = 300.0: must be <= max_deadline_seconds (120)",
    ),
    (
        {"upstream": {"max_deadline_seconds": 5}},
        "upstream.default_deadline_seconds = 10.0: must be <= max_deadline_seconds (5)",
    ),
    (
        {"upstream": {"endpoint_url": "localhost:4566"}},
        'upstream.endpoint_url = "localhost:4566": must be an http:// or https:// URL',
    ),
    ({"upstream": {"connect_timeout_seconds": 0}}, "must be a number of seconds > 0"),
    ({"server": {"max_receive_message_bytes": 0}}, "must be an integer >= 1"),
    ({"metrics": {"port": 70000}}, "metrics.port = 70000: must be an integer from 0 to 65535"),
    ({"server": {"grace_seconds": float("inf")}}, "server.grace_seconds = inf: must be"),
    ({"cache": {"ttl_by_resource": {"arn:x": -1}}}, 'cache.ttl_by_resource."arn:x" = -1:'),
    ({"cache": {"ttl_by_operation": {"Nope": 1}}}, 'cache.ttl_by_operation = "Nope": not a'),
    ({"merge": {"window_ms": -1}}, "merge.window_ms = -1: must be a number >= 0"),
    ({"redis": {"max_connections": 0}}, "redis.max_connections = 0: must be an integer >= 1"),
    ({"coalesce": {"enabled": "yes"}}, 'coalesce.enabled = "yes": must be true or false'),
    (
        {"limits": {"operations": {"GetRecommendations": {"rate": -1}}}},
        "limits.operations.GetRecommendations.rate = -1: must be a number >= 0",
    ),
    (
        {"limits": {"groups": {"g": {"rate": 1, "operations": ["Nope"]}}}},
        'limits.groups.g.operations[0] = "Nope": not an operation (known: ',
    ),
    ({"limits": {"max_buckets": 0}}, "limits.max_buckets = 0: must be an integer >= 1"),
    ({"retry": {"max_attempts": 0}}, "retry.max_attempts = 0: must be an integer >= 1"),
    ({"breaker": {"failure_ratio": 2}}, "breaker.failure_ratio = 2: must be a number > 0"),
    ({"breaker": {"max_open_seconds": 1}}, "breaker.max_open_seconds = 1.0: must be >= open"),
]


@pytest.mark.parametrize(("data", "message"), REFUSED)
def test_a_refused_value_is_one_line_naming_key_value_and_what_is_allowed(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(data)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert "<class" not in text  # no Python or pydantic talk
    assert "Input should" not in text


def test_secrets_are_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict({"redis": {"url": "http://user:hunter2@cache:6379"}})
    assert str(caught.value).startswith("redis.url = (hidden): must be a redis://")
    assert "hunter2" not in str(caught.value)


def test_limit_tables_keep_their_format() -> None:
    arn = "arn:aws:personalize:us-east-1:1:campaign/c"
    limits = Config.from_dict(
        {
            "limits": {
                "operations": {"GetRecommendations": {"rate": 200}},
                "resources": {arn: {"rate": 5, "burst": 2}},
                "groups": {"g": {"rate": 3, "operations": ["GetPersonalizedRanking"]}},
            }
        }
    ).limits
    assert limits.operations["GetRecommendations"] == Limit(200.0, 20.0)  # burst: rate / 10
    assert limits.resources[arn] == Limit(5, 2)
    assert limits.groups["g"] == GroupLimit(3.0, 1.0, ("GetPersonalizedRanking",))
    with pytest.raises(ConfigError, match=r"^limits.operations.X.rate = \"5\": must be a number"):
        Limit.parse("limits.operations.X", {"rate": "5"})


def test_sections_stay_frozen_dataclasses_checked_on_replace() -> None:
    from gateway.schema import changed

    config = Config()
    assert dataclasses.is_dataclass(config.server)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.port = 1  # type: ignore[misc]
    assert dataclasses.replace(config.server, port=6000).port == 6000
    with pytest.raises(ConfigError, match=r"^server.port = -1: must be an integer from 0"):
        changed(config.server, ConfigError, "server", port=-1)


def test_serve_refuses_a_bad_override_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "-5"]) == 2
    err = capsys.readouterr().err
    assert err == "gateway: server.port = -5: must be an integer from 0 to 65535\n"


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        Config.load(bad)


def test_serve_checks_the_emulator_config_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "emulator.toml"
    bad.write_text("[catalog]\nembedding_dim = 64\n")
    assert main(["serve", "--emulator", "--emulator-config", str(bad), "--metrics-port", "0"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"gateway: emulator config {bad}: catalog.embedding_dim = 64: "
        "must be an integer from 1 to 32\n"
    )
