"""Partition heat (issue 22): every item write of a run of orders (bench/heat_run.py), counted on the partition key
it lands on in the table and in each global secondary index, then projected to 2,000 and 10,000 orders per second.
DynamoDB serves 1,000 write units per second on one partition key (a throttled index holds back its table), so
what a data model must answer is which key is hottest per order.

Billed as DynamoDB bills it (1 KB write units, rounded up, per item and per index entry): a table write costs the
larger of the item before and after, twice that inside `TransactWriteItems`, and a failed conditional write the
item's size; an index is written only when the item's entry there changes (none for a sparse index it is not in;
a changed key is a delete plus a put; nothing when no projected attribute changed). Tables and indexes come from
infra/resources.py's template, so an index added later is measured too. Projection: each shared key keeps its share
of the run's writes as the rate grows; a key of one order gets its whole life's writes in one second (upper bound).

    python -m bench.heat [--orders 50] [--check]   # --check: exit 1 if a key passes 1,000 WCU/s at 2,000 orders/s
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

PARTITION_WCU_LIMIT = 1_000  # write units per second DynamoDB serves on one partition key
RULE_RATE = 2_000  # orders/s at which no key may pass the limit (issue 22)
RATES = (2_000, 10_000)
WRITE_UNIT_BYTES = 1024
ORDERS, SELLERS, CUSTOMERS = 200, 20, 100

Item = Mapping[str, Mapping[str, Any]]  # DynamoDB JSON: {"attr": {"S": "..."}}


@dataclass(frozen=True)
class Target:
    """A table or one of its global secondary indexes: where an item write can land."""

    table: str  # the table's kind: orders, deliveries, ...
    index: str  # "" for the table itself
    hash_key: str
    range_key: str | None
    table_keys: tuple[str, ...]
    projection: str = "ALL"  # ALL, KEYS_ONLY or INCLUDE (a table: ALL)
    include: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.table} {self.index}" if self.index else f"{self.table} (table)"


class Write(NamedTuple):
    target: str
    key: str  # the partition key value the write lands on
    units: int


def targets(stage: str) -> dict[str, list[Target]]:
    """Table name -> the table and its indexes, from the template that deploys them."""
    from infra.resources import TABLES, ResourceNames, template

    names = ResourceNames(stage)
    kinds = {names.table(kind): kind for kind, _, _ in TABLES.values()}
    found: dict[str, list[Target]] = {}
    for resource in template(stage)["Resources"].values():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        props = resource["Properties"]
        hash_key, range_key = _keys(props["KeySchema"])
        table_keys = tuple(k for k in (hash_key, range_key) if k)
        kind = kinds[props["TableName"]]
        found[props["TableName"]] = [Target(kind, "", hash_key, range_key, table_keys)] + [
            Target(
                kind,
                index["IndexName"],
                *_keys(index["KeySchema"]),
                table_keys,
                index["Projection"]["ProjectionType"],
                tuple(index["Projection"].get("NonKeyAttributes", ())),
            )
            for index in props.get("GlobalSecondaryIndexes", [])
        ]
    return found


def _keys(schema: list[dict[str, str]]) -> tuple[str, str | None]:
    hash_key = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
    return hash_key, next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)


# --- what one item write costs, where ---------------------------------------------------------------------------


def value_size(value: Mapping[str, Any]) -> int:
    """DynamoDB's size of one attribute value: strings and binaries their bytes, a number one byte per two
    significant digits plus one, a list or map 3 bytes plus one per element plus its elements."""
    kind, raw = next(iter(value.items()))
    if kind == "S":
        return len(str(raw).encode())
    if kind == "B":
        return len(raw) if isinstance(raw, bytes) else len(base64.b64decode(raw))
    if kind == "N":
        digits = str(raw).lstrip("-").replace(".", "").split("e")[0].split("E")[0].strip("0")
        return math.ceil(max(1, len(digits)) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in raw.items())
    if kind in ("SS", "NS", "BS"):
        single = kind[0]
        return sum(value_size({single: v}) for v in raw)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Item) -> int:
    """Attribute names plus values, as DynamoDB sizes an item for write units."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def key_text(value: Mapping[str, Any]) -> str:
    return str(next(iter(value.values())))


def entry(target: Target, item: Item | None) -> dict[str, Any] | None:
    """The item as it stands in `target`: None when it is not there (no item, or a sparse index's key missing)."""
    if item is None:
        return None
    keys = [k for k in (target.hash_key, target.range_key) if k]
    if not all(k in item for k in keys):
        return None
    if target.projection == "ALL" or not target.index:
        return dict(item)
    kept = {*target.table_keys, *keys, *target.include}
    return {name: value for name, value in item.items() if name in kept}


def writes_of(target: Target, old: Item | None, new: Item | None, *, transactional: bool = False) -> list[Write]:
    """The item writes (and their write units) one table write makes on `target`."""
    before, after = entry(target, old), entry(target, new)
    if before is None and after is None:
        return []
    if not target.index:
        shown = after if after is not None else before
        assert shown is not None
        units = write_units(max(item_size(before or {}), item_size(after or {})))
        return [Write(target.name, key_text(shown[target.hash_key]), units * (2 if transactional else 1))]
    if before == after:
        return []  # nothing this index holds changed
    keys = [k for k in (target.hash_key, target.range_key) if k]
    if before is not None and after is not None and all(before[k] == after[k] for k in keys):
        units = write_units(max(item_size(before), item_size(after)))
        return [Write(target.name, key_text(after[target.hash_key]), units)]
    found = []
    if before is not None:
        found.append(Write(target.name, key_text(before[target.hash_key]), write_units(item_size(before))))
    if after is not None:
        found.append(Write(target.name, key_text(after[target.hash_key]), write_units(item_size(after))))
    return found


# --- the tally and its projection --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hot:
    """A table's or an index's hottest key of one kind, and what it took over the run."""

    key: str = ""
    writes: int = 0
    units: int = 0


@dataclass(frozen=True)
class Row:
    """One table or index. Its keys are of two kinds: shared keys (a seller, a status, `order`, an integrator's
    counter), whose writes grow with the traffic, and one order's keys (the order's own row, its delivery rows),
    whose writes are that order's whatever the traffic: at most its whole life's writes in one second."""

    target: Target
    writes: int
    units: int
    keys: int
    shared: Hot
    one_order: Hot
    orders: int

    @property
    def writes_per_order(self) -> float:
        return self.writes / self.orders

    @property
    def units_per_order(self) -> float:
        return self.units / self.orders

    def _scaled(self, rate: float) -> tuple[float, float]:
        return self.shared.writes / self.orders * rate, self.shared.units / self.orders * rate

    def hottest(self, rate: float = RULE_RATE) -> Hot:
        """The key with the most write units per second at `rate` orders per second."""
        return self.one_order if self.one_order.units > self._scaled(rate)[1] else self.shared

    def writes_per_second(self, rate: float) -> float:
        """The hottest key's item writes per second at `rate` orders per second."""
        return float(self.one_order.writes) if self.hottest(rate) is self.one_order else self._scaled(rate)[0]

    def units_per_second(self, rate: float) -> float:
        return max(self._scaled(rate)[1], self.one_order.units)

    @property
    def share(self) -> float:
        """The hottest key's share of this table's or index's write units."""
        return self.hottest().units / self.units if self.units else 0.0

    @property
    def limit_rate(self) -> float:
        """Orders per second at which a key of this table or index reaches the partition limit (inf: never)."""
        if self.one_order.units > PARTITION_WCU_LIMIT:
            return 0.0
        return PARTITION_WCU_LIMIT * self.orders / self.shared.units if self.shared.units else math.inf

    def label(self, rate: float = RULE_RATE) -> str:
        hot = self.hottest(rate)
        if not hot.key:
            return "-"
        if hot is self.one_order:
            return f"{self.target.hash_key}=<one order>"
        value = hot.key if len(hot.key) <= 28 else hot.key[:25] + "..."  # noqa: PLR2004 - column width
        return f"{self.target.hash_key}={value}"


def _order_bound(key: str, order_ids: frozenset[str]) -> bool:
    return any(part in order_ids for part in re.findall(r"[\w-]+", key))


@dataclass
class Heat:
    """Item writes and write units per (table or index, partition key) over a run of `orders` orders; `order_ids`
    tells one order's keys (those naming an order) from shared ones."""

    orders: int
    targets: list[Target]
    writes: Counter[tuple[str, str]] = field(default_factory=Counter)
    units: Counter[tuple[str, str]] = field(default_factory=Counter)
    order_ids: frozenset[str] = frozenset()
    refused: int = 0  # failed conditional writes (counted on their key: they cost write units all the same)
    mix: str = ""
    # Item writes per (step of the run, table or index, kind of item): what bench/ledger.py justifies one by one.
    items: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def add(self, write: Write, *, step: str = "", kind: str = "") -> None:
        self.writes[write.target, write.key] += 1
        self.units[write.target, write.key] += write.units
        self.items[step, write.target, kind] += 1

    def rows(self) -> list[Row]:
        rows = []
        for target in self.targets:
            mine = {key: n for (name, key), n in self.units.items() if name == target.name}
            kinds: dict[bool, Hot] = {}
            for bound in (False, True):
                keys = [k for k in mine if _order_bound(k, self.order_ids) == bound]
                top = max(keys, key=lambda k: (mine[k], self.writes[target.name, k]), default="")
                kinds[bound] = Hot(top, self.writes[target.name, top], mine[top]) if top else Hot()
            written = sum(n for (name, _), n in self.writes.items() if name == target.name)
            rows.append(Row(target, written, sum(mine.values()), len(mine), kinds[False], kinds[True], self.orders))
        return sorted(rows, key=lambda r: (r.limit_rate, -r.units_per_second(RULE_RATE)))

    def first_limit(self) -> Row | None:
        binding = [r for r in self.rows() if not math.isinf(r.limit_rate)]
        return min(binding, key=lambda r: r.limit_rate) if binding else None

    @property
    def total_writes_per_order(self) -> float:
        return sum(self.writes.values()) / self.orders

    @property
    def total_units_per_order(self) -> float:
        return sum(self.units.values()) / self.orders


def over_limit(heat: Heat, rate: float = RULE_RATE, limit: float = PARTITION_WCU_LIMIT) -> list[Row]:
    """The tables and indexes with a key that would pass `limit` write units per second at `rate` orders per
    second: the rule of issue 22 is that there are none."""
    return [row for row in heat.rows() if row.units_per_second(rate) > limit]


def _pct(share: float) -> str:
    return "<1%" if 0 < share < 0.01 else f"{share:.0%}"  # noqa: PLR2004 - what would round to 0% or 1%


def _n(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"  # noqa: PLR2004 - readable precision


ASSUMPTION = (
    "Projection: a shared key keeps its share of the run's writes as the rate grows (the run's mix scaled up); "
    "one order's keys get that order's writes whatever the rate (shown as its whole life's writes in one second)."
)


def console(heat: Heat) -> str:
    """The table `python -m bench.heat` and `make bench` print."""
    lines = [
        f"Partition heat: {heat.mix or f'{heat.orders} orders'}; every item write on its partition key",
        f"  {'table / index':<32} {'writes':>6} {'WCU':>5} {'keys':>5}  {'hottest key (at 2,000/s)':<34} {'share':>5}"
        + "".join(f" {f'@{r:,}/s writes':>16} {'WCU/s':>7}" for r in RATES),
    ]
    for row in heat.rows():
        lines.append(
            f"  {row.target.name:<32} {row.writes_per_order:>6.1f} {row.units_per_order:>5.1f} {row.keys:>5}  "
            f"{row.label():<34} {_pct(row.share):>5}"
            + "".join(f" {_n(row.writes_per_second(r)):>16} {_n(row.units_per_second(r)):>7}" for r in RATES)
        )
    lines.append(
        f"  {'every table and index':<32} {heat.total_writes_per_order:>6.1f} {heat.total_units_per_order:>5.1f}"
        f"   (per order; {heat.refused} refused conditional writes among them)"
    )
    first = heat.first_limit()
    if first is not None:
        lines.append(
            f"  first limit: {first.target.name}, key {first.label()}, reaches {PARTITION_WCU_LIMIT:,} WCU/s "
            f"at {first.limit_rate:,.0f} orders/s"
        )
    over = over_limit(heat)
    verdict = "met" if not over else "NOT met: " + ", ".join(r.target.name for r in over)
    lines.append(f"  rule: no key over {PARTITION_WCU_LIMIT:,} WCU/s at {RULE_RATE:,} orders/s: {verdict}")
    lines.append(f"  {ASSUMPTION}")
    return "\n".join(lines)


def markdown(heat: Heat) -> str:
    """The same table for docs/benchmarks.md."""

    def hot(value: float) -> str:
        return f"**{_n(value)}**" if value > PARTITION_WCU_LIMIT else _n(value)

    rows = [
        "| table / index | writes per order | WCU per order | keys | hottest key | its share | "
        + " | ".join(f"writes/s at {r:,}/s | WCU/s at {r:,}/s" for r in RATES)
        + " | a key reaches 1,000 WCU/s at |",
        "| --- |" + " ---: |" * 3 + " --- | ---: |" + " ---: |" * (2 * len(RATES) + 1),
    ]
    for row in heat.rows():
        limit = "-" if math.isinf(row.limit_rate) else f"{row.limit_rate:,.0f} orders/s"
        rows.append(
            f"| {row.target.name} | {row.writes_per_order:.1f} | {row.units_per_order:.1f} | {row.keys:,} | "
            f"`{row.label()}` | {_pct(row.share)} | "
            + " | ".join(f"{_n(row.writes_per_second(r))} | {hot(row.units_per_second(r))}" for r in RATES)
            + f" | {limit} |"
        )
    rows.append(
        f"| every table and index | {heat.total_writes_per_order:.1f} | {heat.total_units_per_order:.1f} | | | |"
        + " |" * (2 * len(RATES) + 1)
    )
    first = heat.first_limit()
    over = over_limit(heat)
    tail = ["", f"{heat.mix}; {heat.refused} refused conditional writes, counted on their keys. {ASSUMPTION}"]
    if first is not None:
        tail += [
            "",
            f"First limit: **{first.target.name}**, key `{first.label()}`, reaches {PARTITION_WCU_LIMIT:,} WCU/s at "
            f"**{first.limit_rate:,.0f} orders/s**. Rule (no key over {PARTITION_WCU_LIMIT:,} WCU/s at "
            f"{RULE_RATE:,} orders/s): "
            + ("met." if not over else "**not met** (" + ", ".join(r.target.name for r in over) + ")."),
        ]
    return "\n".join(rows + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=ORDERS)
    parser.add_argument("--sellers", type=int, default=SELLERS)
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    parser.add_argument("--markdown", action="store_true", help="print the docs/benchmarks.md table too")
    parser.add_argument("--check", action="store_true", help="exit 1 when a key passes the limit at 2,000/s")
    args = parser.parse_args()
    from bench.heat_run import measure  # the run needs the model above: imported here, not at the top

    with contextlib.redirect_stdout(io.StringIO()):  # the service's EMF lines
        heat = measure(args.orders, args.sellers, args.customers)
    print(console(heat))
    if args.markdown:
        print()
        print(markdown(heat))
    if args.check and over_limit(heat):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
