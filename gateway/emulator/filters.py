"""A small, deterministic subset of Amazon Personalize filter expressions.

Supported form (one condition; keywords case-insensitive)::

    INCLUDE|EXCLUDE ItemID|ActionID WHERE <Dataset>.<ATTRIBUTE> IN|NOT IN|=|!= <values>

* ``<Dataset>`` is ``Items`` or ``Actions`` (compares the catalog attribute) or
  ``Interactions`` with attribute ``EVENT_TYPE``: a user "has interacted" with an item
  for an event type when a stable hash of (user, item, event type) falls in a 5% bucket,
  so "exclude purchased" filters are user-dependent yet reproducible.
* ``<values>`` is ``("a", "b")``, ``"a"`` or ``$PARAM``, mixable inside the parentheses.
  ``$PARAM`` values come from the request's ``filterValues`` in AWS's format:
  ``"\\"comedy\\",\\"drama\\""``. As AWS documents, an EXCLUDE filter whose parameters
  are all missing is not applied, and an INCLUDE filter needs all of its parameters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.emulator.protocol import AwsError

__all__ = ["FilterExpr", "FilterSyntaxError", "interacted", "parse_filter_values"]

_EXPR = re.compile(
    r"^\s*(INCLUDE|EXCLUDE)\s+(ItemID|ActionID)\s+WHERE\s+(Items|Actions|Interactions)"
    r"\.([A-Za-z_][A-Za-z0-9_]*)\s+(NOT\s+IN|IN|=|!=)\s+(.+?)\s*$",
    re.IGNORECASE,
)
_TOKEN = re.compile(r'\$[A-Za-z0-9_]+|"(?:[^"\\]|\\.)*"|[^,\s()"]+')
# 5% of (user, item) pairs count as interactions of each event type.
_INTERACTION_BUCKET = int(0.05 * 65536)


class FilterSyntaxError(ValueError):
    """The expression is outside the supported subset."""


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        return token[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return token


def parse_filter_values(raw: str) -> tuple[str, ...]:
    """``"\\"a\\",\\"b\\""`` (AWS's filterValues format) -> ``("a", "b")``."""
    return tuple(_unquote(t) for t in _TOKEN.findall(raw))


def interacted(seed: str, user_id: str, item_id: str, event_type: str) -> bool:
    digest = hashlib.blake2b(
        f"{seed}\x1f{user_id}\x1f{item_id}\x1f{event_type}".encode(), digest_size=2
    ).digest()
    return int.from_bytes(digest, "little") < _INTERACTION_BUCKET


@dataclass(frozen=True)
class FilterExpr:
    arn: str
    expression: str
    include: bool
    target: str  # "ItemID" | "ActionID"
    dataset: str  # "Items" | "Actions" | "Interactions"
    attribute: str
    negate: bool
    literals: tuple[str, ...]
    params: tuple[str, ...]

    @classmethod
    def parse(cls, arn: str, expression: str) -> FilterExpr:
        m = _EXPR.match(expression)
        if not m:
            raise FilterSyntaxError(f"unsupported filter expression: {expression!r}")
        action, target, dataset, attribute, op, rhs = m.groups()
        target = "ItemID" if target.lower() == "itemid" else "ActionID"
        dataset = {"items": "Items", "actions": "Actions", "interactions": "Interactions"}[
            dataset.lower()
        ]
        if (target == "ItemID") != (dataset in ("Items", "Interactions")):
            raise FilterSyntaxError(f"{target} filters cannot test {dataset}: {expression!r}")
        if dataset == "Interactions" and attribute.upper() != "EVENT_TYPE":
            raise FilterSyntaxError("Interactions filters support EVENT_TYPE only")
        tokens = _TOKEN.findall(rhs)
        if not tokens:
            raise FilterSyntaxError(f"no values in {expression!r}")
        literals = tuple(_unquote(t) for t in tokens if not t.startswith("$"))
        params = tuple(t[1:] for t in tokens if t.startswith("$"))
        return cls(
            arn=arn,
            expression=expression,
            include=action.upper() == "INCLUDE",
            target=target,
            dataset=dataset,
            attribute=attribute,
            negate=op.upper().replace(" ", "").startswith(("NOT", "!")),
            literals=literals,
            params=params,
        )

    def resolve(self, filter_values: Mapping[str, str] | None) -> tuple[str, ...] | None:
        """The value set for one request; ``None`` means "the filter does not apply"."""
        values = list(self.literals)
        missing = []
        for p in self.params:
            raw = filter_values.get(p) if filter_values else None
            if raw is None:
                missing.append(p)
            else:
                values.extend(parse_filter_values(raw))
        if missing:
            if self.include:
                raise AwsError(
                    "InvalidInputException",
                    f"Filter values are missing for parameter(s) {', '.join(missing)} "
                    f"of filter {self.arn}",
                )
            if not values:
                return None
        return tuple(sorted(set(values)))

    def excluded_mask(
        self,
        ids: Sequence[str],
        attributes: Sequence[Mapping[str, str]],
        values: tuple[str, ...],
        user_id: str | None,
        seed: str,
    ) -> bytearray:
        """One byte per entity: 1 = removed by this filter for this request."""
        wanted = frozenset(values)
        mask = bytearray(len(ids))
        for i, item_id in enumerate(ids):
            if self.dataset == "Interactions":
                hit = user_id is not None and any(
                    interacted(seed, user_id, item_id, v) for v in wanted
                )
            else:
                hit = attributes[i].get(self.attribute) in wanted
            if self.negate:
                hit = not hit
            # INCLUDE keeps the hits; EXCLUDE removes them.
            mask[i] = (not hit) if self.include else hit
        return mask
