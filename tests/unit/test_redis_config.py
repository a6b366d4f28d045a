"""`[redis]`: the deployment shapes (URL, TLS, Sentinel, Cluster) become the right client,
offline (no client connects before its first command); wrong settings are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool

from gateway.cache_config import RedisConfig
from gateway.config import Config, ConfigError
from gateway.redis import connect


async def test_a_plain_url_is_one_node_without_retries() -> None:
    client = connect(RedisConfig(url="redis://cache.internal:6380/2"))
    assert isinstance(client, Redis)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.internal", 6380, 2)
    assert client.get_retry().get_retries() == 0  # the failure policy decides, not redis-py
    await client.aclose()


async def test_tls_with_an_acl_user_reads_the_password_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-the-secret\n")
    cfg = RedisConfig(
        url="rediss://mlgw@redis.internal:6380/0",
        password_file=str(secret),
        tls_ca_file="/etc/mlgw/redis/ca.crt",
    )
    client = connect(cfg)
    pool = client.connection_pool
    assert pool.connection_class is SSLConnection
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("mlgw", "from-the-secret")
    assert kwargs["ssl_ca_certs"] == "/etc/mlgw/redis/ca.crt"
    assert "from-the-secret" not in repr(cfg)  # the file's content is never in the config
    await client.aclose()


async def test_sentinels_find_the_master_by_name() -> None:
    cfg = RedisConfig(url="redis://:pw@unused/3", sentinels=["10.0.0.1:26379", "10.0.0.2:26379"])
    client = connect(cfg)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["password"] == "pw"
    await client.aclose()


async def test_cluster_mode_is_a_cluster_client() -> None:
    client = connect(RedisConfig(url="redis://node-1.internal:6379", cluster=True))
    assert isinstance(client, RedisCluster)
    await client.aclose()


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        ({"url": "http://x"}, "redis.url"),
        ({"url": "redis://x", "sentinels": ["no-port"]}, 'must be "host:port"'),
        ({"url": "redis://x", "sentinels": ["h:1"], "cluster": True}, "cannot be combined"),
        ({"url": "redis://x", "unresponsive_seconds": 0}, "redis.unresponsive_seconds"),
    ],
)
def test_wrong_settings_are_refused(redis: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_dict({"redis": redis})
