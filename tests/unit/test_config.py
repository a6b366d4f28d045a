from pathlib import Path

import pytest

from gateway.config import Config, ConfigError


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
        ({"server": {"prot": 1}}, "unknown setting(s) in [server]: prot"),
        ({"sever": {}}, "unknown setting(s) in [top level]: sever"),
        ({"server": {"port": "80"}}, "server.port must be"),
        ({"server": {"workers": True}}, "server.workers must be"),
        ({"server": 3}, "[server] must be a table"),
    ],
)
def test_mistakes_are_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(data)
    assert message in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        Config.load(bad)
