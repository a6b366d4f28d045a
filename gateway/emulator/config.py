"""The emulator's configuration: TOML (stdlib ``tomllib``) -> frozen dataclasses.

Every key is documented in ``example.toml`` next to this file. Unknown keys are errors,
so a typo does not silently fall back to a default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from gateway.emulator.faults import FaultConfig, FaultConfigError

__all__ = [
    "AuthConfig",
    "CatalogConfig",
    "ConfigError",
    "EmulatorConfig",
    "FilterSpec",
    "ItemSpec",
    "JobsConfig",
    "ResourceSpec",
    "ServerConfig",
    "SolutionVersionSpec",
    "load_config",
    "parse_config",
]

T = TypeVar("T")


class ConfigError(ValueError):
    """The configuration is malformed; the message names the key."""


@dataclass(frozen=True)
class ItemSpec:
    """An explicit catalog entry (item or action) with string attributes."""

    id: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceSpec:
    """A campaign or a recommender. ``recipe`` decides which inputs it needs."""

    name: str
    recipe: str
    arn: str | None = None
    # Different salts give a resource its own "model"; equal salts (the default "")
    # make resources agree, so one user's scores match across campaigns.
    salt: str = ""


@dataclass(frozen=True)
class FilterSpec:
    name: str
    expression: str
    arn: str | None = None


@dataclass(frozen=True)
class SolutionVersionSpec:
    name: str  # "<solution>/<version>", as in the ARN
    recipe: str = "user-personalization"
    arn: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    workers: int = 1
    region: str = "us-east-1"
    account_id: str = "000000000000"


def _default_campaigns() -> tuple[ResourceSpec, ...]:
    return (
        ResourceSpec("demo", "user-personalization"),
        ResourceSpec("ranking", "personalized-ranking"),
        ResourceSpec("related", "related-items"),
        ResourceSpec("popular", "popularity-count"),
        ResourceSpec("actions", "next-best-action"),
    )


def _default_recommenders() -> tuple[ResourceSpec, ...]:
    return (
        ResourceSpec("top-picks", "recommended-for-you"),
        ResourceSpec("more-like-x", "more-like-x"),
        ResourceSpec("best-sellers", "best-sellers"),
    )


def _default_filters() -> tuple[FilterSpec, ...]:
    return (
        FilterSpec("exclude-genres", "EXCLUDE ItemID WHERE Items.GENRE IN ($GENRES)"),
        FilterSpec("include-genres", "INCLUDE ItemID WHERE Items.GENRE IN ($GENRES)"),
        FilterSpec("comedy-only", 'INCLUDE ItemID WHERE Items.GENRE IN ("comedy")'),
        FilterSpec(
            "exclude-purchased", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")'
        ),
        FilterSpec("action-category", "INCLUDE ActionID WHERE Actions.CATEGORY IN ($CATEGORIES)"),
    )


def _default_solution_versions() -> tuple[SolutionVersionSpec, ...]:
    return (
        SolutionVersionSpec("demo/1", "user-personalization"),
        SolutionVersionSpec("ranking/1", "personalized-ranking"),
        SolutionVersionSpec("related/1", "related-items"),
    )


@dataclass(frozen=True)
class CatalogConfig:
    seed: str = "mlgw-emulator"
    num_items: int = 1000
    item_id_prefix: str = "i"
    num_actions: int = 50
    action_id_prefix: str = "a"
    embedding_dim: int = 16
    temperature: float = 2.0
    cache_size: int = 4096
    items: tuple[ItemSpec, ...] = ()
    actions: tuple[ItemSpec, ...] = ()
    campaigns: tuple[ResourceSpec, ...] = field(default_factory=_default_campaigns)
    recommenders: tuple[ResourceSpec, ...] = field(default_factory=_default_recommenders)
    filters: tuple[FilterSpec, ...] = field(default_factory=_default_filters)
    solution_versions: tuple[SolutionVersionSpec, ...] = field(
        default_factory=_default_solution_versions
    )


@dataclass(frozen=True)
class JobsConfig:
    step_seconds: float = 5.0
    in_progress_steps: int = 4
    personalize_max_active: int = 5
    fail_marker: str = "fail"
    partial_marker: str = "partial"
    expire_marker: str = "expire"
    bedrock_default_timeout_hours: int = 72


@dataclass(frozen=True)
class AuthConfig:
    """SigV4 checking. ``credentials``: access key id -> secret access key.

    Empty (the default): requests need a SigV4-shaped ``Authorization`` header and
    ``X-Amz-Date``, but signatures are not verified. Non-empty: every request outside
    the admin API must be signed with one of these key pairs (see ``signing.py``).
    """

    # repr=False: a logged or printed config does not show the secrets.
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class EmulatorConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)

    def with_job_step(self, seconds: float) -> EmulatorConfig:
        return replace(self, jobs=replace(self.jobs, step_seconds=seconds))


def _scalars(cls: type[T], raw: Mapping[str, Any], where: str, skip: set[str]) -> T:
    """Build ``cls`` from the scalar keys of ``raw``, type-checked against its defaults."""
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in skip:
            continue
        if not hasattr(defaults, key):
            raise ConfigError(f"unknown key {where}.{key}")
        expected = type(getattr(defaults, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            raise ConfigError(f"{where}.{key} must be {expected.__name__}")
        kwargs[key] = value
    return cls(**kwargs)


def _table(raw: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.{key} must be a table")
    return value


def _array(raw: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]] | None:
    if key not in raw:
        return None
    value = raw[key]
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(f"{where}.{key} must be an array of tables")
    return value


def _string(entry: Mapping[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key} must be a non-empty string")
    return value


def _entries(
    raw: Mapping[str, Any], key: str, allowed: set[str]
) -> list[tuple[str, Mapping[str, Any]]] | None:
    entries = _array(raw, key, "catalog")
    if entries is None:
        return None
    out = []
    for i, entry in enumerate(entries):
        where = f"catalog.{key}[{i}]"
        unknown = set(entry) - allowed
        if unknown:
            raise ConfigError(f"unknown key(s) in {where}: {sorted(unknown)}")
        out.append((where, entry))
    return out


def _items(raw: Mapping[str, Any], key: str) -> tuple[ItemSpec, ...]:
    entries = _entries(raw, key, {"id", "attributes"}) or []
    items = []
    for where, entry in entries:
        attrs = entry.get("attributes", {})
        if not isinstance(attrs, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attrs.items()
        ):
            raise ConfigError(f"{where}.attributes must map names to strings")
        items.append(ItemSpec(str(_string(entry, "id", where)), dict(attrs)))
    return tuple(items)


def _resources(raw: Mapping[str, Any], key: str) -> tuple[ResourceSpec, ...] | None:
    entries = _entries(raw, key, {"name", "recipe", "arn", "salt"})
    if entries is None:
        return None
    return tuple(
        ResourceSpec(
            name=str(_string(e, "name", w)),
            recipe=str(_string(e, "recipe", w)),
            arn=_string(e, "arn", w, required=False),
            salt=str(e.get("salt", "")),
        )
        for w, e in entries
    )


def _parse_catalog(raw: Mapping[str, Any]) -> CatalogConfig:
    lists = {"items", "actions", "campaigns", "recommenders", "filters", "solution_versions"}
    base = _scalars(CatalogConfig, raw, "catalog", lists)
    if not 1 <= base.embedding_dim <= 32:
        raise ConfigError("catalog.embedding_dim must be between 1 and 32")
    if base.cache_size < 1:
        raise ConfigError("catalog.cache_size must be >= 1")
    changes: dict[str, Any] = {"items": _items(raw, "items"), "actions": _items(raw, "actions")}
    for key in ("campaigns", "recommenders"):
        parsed = _resources(raw, key)
        if parsed is not None:
            changes[key] = parsed
    filters = _entries(raw, "filters", {"name", "expression", "arn"})
    if filters is not None:
        changes["filters"] = tuple(
            FilterSpec(
                str(_string(e, "name", w)),
                str(_string(e, "expression", w)),
                _string(e, "arn", w, required=False),
            )
            for w, e in filters
        )
    versions = _entries(raw, "solution_versions", {"name", "recipe", "arn"})
    if versions is not None:
        changes["solution_versions"] = tuple(
            SolutionVersionSpec(
                str(_string(e, "name", w)),
                str(e.get("recipe", "user-personalization")),
                _string(e, "arn", w, required=False),
            )
            for w, e in versions
        )
    return replace(base, **changes)


def _parse_auth(raw: Mapping[str, Any]) -> AuthConfig:
    unknown = set(raw) - {"credentials"}
    if unknown:
        raise ConfigError(f"unknown key(s) in auth: {sorted(unknown)}")
    credentials = raw.get("credentials", {})
    if not isinstance(credentials, Mapping):
        raise ConfigError("auth.credentials must be a table")
    for key, secret in credentials.items():
        # "/" would make the key id unparseable in a SigV4 credential scope.
        if not isinstance(key, str) or not key or "/" in key or key != key.strip():
            raise ConfigError(
                f"auth.credentials: access key id {key!r} must be a non-empty string "
                "without '/' or surrounding spaces"
            )
        if not isinstance(secret, str) or not secret:
            raise ConfigError(f"auth.credentials.{key} must be a non-empty string")
    return AuthConfig(credentials=dict(credentials))


def parse_config(raw: Mapping[str, Any]) -> EmulatorConfig:
    """Build the configuration from an already-parsed TOML document (or any mapping)."""
    unknown = set(raw) - {"server", "catalog", "jobs", "faults", "auth"}
    if unknown:
        raise ConfigError(f"unknown top-level table(s): {sorted(unknown)}")
    server = _scalars(ServerConfig, _table(raw, "server", ""), "server", set())
    if server.workers < 1:
        raise ConfigError("server.workers must be >= 1")
    jobs = _scalars(JobsConfig, _table(raw, "jobs", ""), "jobs", set())
    if jobs.step_seconds <= 0 or jobs.in_progress_steps < 1 or jobs.personalize_max_active < 1:
        raise ConfigError("jobs.step_seconds must be > 0, the step and job counts >= 1")
    try:
        faults = FaultConfig.from_mapping(_table(raw, "faults", ""))
    except FaultConfigError as exc:
        raise ConfigError(str(exc)) from exc
    return EmulatorConfig(
        server=server,
        catalog=_parse_catalog(_table(raw, "catalog", "")),
        jobs=jobs,
        faults=faults,
        auth=_parse_auth(_table(raw, "auth", "")),
    )


def load_config(path: str | Path) -> EmulatorConfig:
    with open(path, "rb") as fh:
        try:
            raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    return parse_config(raw)
