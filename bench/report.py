# ruff: noqa: E501 - the document's markdown tables are one line per row
"""The console table and docs/benchmarks.md, from one run's measurements."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.coldstart_run import ColdStart
from bench.fanout import FanOut
from bench.heat import PARTITION_WCU_LIMIT, Heat
from bench.heat import console as heat_console
from bench.heat import markdown as heat_markdown
from bench.ledger import markdown as ledger_markdown
from bench.life import WARM_LIVES, Life, Lives, Step
from bench.package import LAMBDA_UNZIPPED_LIMIT_MB, LAMBDA_ZIP_LIMIT_MB, Package
from bench.prices import ORDER_INDEX_UNITS_PER_LIFE, PRICES_AS_OF, Bill, Usage, bill
from bench.scaling import Scale

ROOT = Path(__file__).resolve().parent.parent
ISSUE_COUNT = 115  # issue 14's count of one order life, cited (not measured here)
GOAL_REQUESTS = 50
GOAL_RATIO = 1.2

# The floor per step: the fewest requests that keep the step's guarantees (argued in the document). Keys are
# step name prefixes; the two kinds of callback are told apart by the words the life puts in their names.
FLOORS: dict[str, int] = {
    "create": 3,
    "authorizer": 1,
    "dispatch": 6,
    "  notification": 1,
    "callback (moves the order)": 2,
    "callback (kept on the delivery only)": 2,
    "sweeper": 1,
}

# Figures of the code BEFORE the cuts, measured by `make bench` on 2026-11-25 11:03 UTC (docs/benchmarks.md of
# that run). Constants on purpose: that code is gone, so they cannot be measured again; every other figure of the
# document is measured in the run that writes it.
BEFORE_WHEN = "2026-11-25 11:03 UTC"
BEFORE_WARM = 111
BEFORE_FRESH = 116
BEFORE_STEPS: dict[str, int] = {
    "create": 3,
    "authorizer": 1,
    "dispatch": 37,
    "  notification": 3,
    "callback (moves the order)": 9,
    "callback (kept on the delivery only)": 8,
    "sweeper": 1,
}
BEFORE_DOLLARS = 169
BEFORE_RATIOS: dict[str, float] = {"api": 2.03, "authorizer": 1.57, "dispatcher": 2.19, "callback": 2.58}

# docs/benchmarks.md ends with a section kept by hand: figures `make bench` does not take (the soak, payload
# templates, arithmetic on hot keys). A run rewrites everything above this heading and keeps the section as it is.
KEPT_HEADING = "## Measured outside `make bench`"


def keep_hand_written(old: str | None, new: str) -> str:
    """The new document followed by the old one's hand-kept section (KEPT_HEADING to the end), so that figures
    measured elsewhere survive a `make bench` run rather than being lost or copied into the generator."""
    if not old or KEPT_HEADING not in old:
        return new
    return new.rstrip("\n") + "\n\n" + old[old.index(KEPT_HEADING) :]


def _kind(step: Step) -> str:
    if step.name.startswith("callback"):
        return (
            "callback (moves the order)" if "moves the order" in step.name else "callback (kept on the delivery only)"
        )
    for prefix in FLOORS:
        if step.name.startswith(prefix):
            return prefix
    return ""


def floor_of(step: Step) -> int:
    kind = _kind(step)
    return FLOORS[kind] if kind else step.total


def before_of(step: Step) -> int | None:
    return BEFORE_STEPS.get(_kind(step))


def _short(function: str) -> str:
    """`callback: first one` -> `callback`: the key of BEFORE_RATIOS."""
    return function.split(":")[0].strip()


@dataclass
class Results:
    lives: Lives
    scales: list[Scale]
    fan: FanOut
    package: Package
    colds: list[ColdStart]
    runs: int
    timings: dict[str, float]
    load: tuple[float, float] = (0.0, 0.0)
    heat: Heat | None = None


def _per_life_floor(life: Life) -> int:
    return sum(floor_of(s) for s in life.steps if not s.name.startswith(("authorizer", "sweeper")))


# --- dollars ---------------------------------------------------------------------------------------------------


def _max_concurrency() -> int:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return int(config["stages"]["prod"]["environment_variables"]["DISPATCH_MAX_CONCURRENCY"])


def _memory() -> dict[str, int]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = config["stages"]["prod"]["lambda_functions"]
    return {name: int(value["lambda_memory_size"]) for name, value in functions.items()}


def _table_kind(target: str) -> str:
    return target.rsplit("-", 1)[-1] if target else ""


def usage_now(life: Life) -> Usage:
    """The measured life as billable usage. A `TransactWriteItems` (a delivery's outcome with its attempt line) pays
    two units per item on the table (its index update is an ordinary write): the state row counts as one
    delivery-row write (table and index) plus one other unit, the attempt line as two other units."""
    memory = _memory()
    writes = {"orders": 0, "deliveries": 0, "other": 0}
    reads = sqs = sns = secrets = 0
    seconds: dict[str, float] = {"api_handler": 0.0, "dispatch_orders": 0.0}
    for step in life.steps:
        if step.name.startswith("sweeper"):
            continue
        if step.name.startswith("dispatch"):
            seconds["dispatch_orders"] += step.seconds
        elif not step.name.startswith(("authorizer", "  notification")):
            seconds["api_handler"] += step.seconds
        for request in step.requests:
            if request.service == "dynamodb":
                if request.operation in ("PutItem", "UpdateItem", "DeleteItem"):
                    kind = _table_kind(request.target)
                    writes[kind if kind in writes else "other"] += 1
                elif request.operation == "TransactWriteItems":
                    writes["deliveries"] += 1
                    writes["other"] += 3
                else:
                    reads += 1
            elif request.service == "sqs":
                sqs += 1
            elif request.service == "sns":
                sns += 1
            elif request.service.startswith("secrets"):
                secrets += 1
    gb_seconds = (
        seconds["api_handler"] * memory["api_handler"] / 1024
        + seconds["dispatch_orders"] * memory["dispatch_orders"] / 1024
        + 0.01 * memory["bearer_auth"] / 1024
    )
    return Usage(
        api_requests=7,
        lambda_invocations=9,
        gb_seconds=gb_seconds,
        order_writes=writes["orders"],
        delivery_writes=writes["deliveries"],
        other_writes=writes["other"],
        reads=reads,
        sqs=sqs,
        sns=sns,
        secrets=secrets,
    )


def usage_floor(now: Usage, life: Life) -> Usage:
    """The floor's usage: order writes create 1 + dispatched 1 + 5 moving callbacks; delivery-table writes the
    seller's quota counter + 3 outcomes + 6 callbacks; reads: the authorizer's token, the dispatch's order and the non-moving callback's order; Lambda
    time scaled by the requests left (floor over measured)."""
    scale = _per_life_floor(life) / max(1, life.total())
    return Usage(7, now.lambda_invocations, now.gb_seconds * scale, 7, 10, 0, 3, 2, 6, 0)


# --- console ---------------------------------------------------------------------------------------------------


def console(r: Results) -> str:
    warm, cold = r.lives.warm, r.lives.cold
    lines = ["AWS requests of one order's life (3 integrators, 6 signed callbacks, notifications)"]
    lines.append(f"  {'step':<62} {'now':>4} {'floor':>5} {'before':>6}")
    for step in warm.steps:
        before = before_of(step)
        lines.append(
            f"  {step.name[:62]:<62} {step.total:>4} {floor_of(step):>5} {before if before is not None else '-':>6}"
        )
    lines.append(
        f"  {'order life, warm containers (authorizer, sweeper apart)':<62} {warm.total():>4} "
        f"{_per_life_floor(warm):>5} {BEFORE_WARM:>6}   goal <= {GOAL_REQUESTS}: {_met(warm.total() <= GOAL_REQUESTS)}"
    )
    lines.append(
        f"  {'order life, fresh containers (secrets and integrators read)':<62} {cold.total():>4} {'':>5} {BEFORE_FRESH:>6}"
    )
    lines.append(f"  {'create with an Idempotency-Key':<62} {r.lives.keyed_create.total:>4} {3:>5}")
    now = usage_now(warm)
    sizes = warm.sizes
    measured = r.heat.total_units_per_order if r.heat is not None else None
    dollars = [bill(now, sizes, measured_write_units=measured), bill(usage_floor(now, warm), sizes)]
    lines.append(
        f"\nDollars per million orders: now ${dollars[0].total:,.0f}, floor ${dollars[1].total:,.0f} "
        f"(before the cuts, {BEFORE_WHEN}: ${BEFORE_DOLLARS})"
    )
    lines.append(f"\nCold start, fresh interpreter to first event served, median of {r.runs} (ratio: median of pairs)")
    lines.append(f"  {'function':<50} {'app':>8} {'floor':>8} {'ratio':>6} {'before':>7}   goal <= {GOAL_RATIO}x")
    for row in r.colds:
        before_ratio = BEFORE_RATIOS.get(_short(row.function))
        shown = f"{before_ratio:.2f}x" if before_ratio else "-"
        lines.append(
            f"  {row.function:<50} {row.real:>6.0f}ms {row.floor:>6.0f}ms {row.ratio:>5.2f}x {shown:>7}   "
            f"{_met(row.ratio <= GOAL_RATIO)}"
        )
    lines.append("\nScaling: requests / items read, by orders in the table")
    header = "".join(f"{s.size:>16,}" for s in r.scales)
    lines.append(f"  {'':<40}{header}")
    for label, get in _scale_rows():
        cells = "".join(f"{get(s):>16}" for s in r.scales)
        lines.append(f"  {label:<40}{cells}")
    f = r.fan
    lines.append("\nFan-out: 10 orders x 3 integrators answering in 100 ms, one SQS batch (median)")
    lines.append(f"  {'baseline: the 30 POSTs one after another':<50} {f.sequential * 1000:>8.0f} ms   1.00x")
    lines.append(f"  {'one order (3 integrators at once)':<50} {f.one_order * 1000:>8.0f} ms")
    lines.append(
        f"  {'the batch of 10 orders':<50} {f.batch * 1000:>8.0f} ms   {f.batch / f.sequential:.2f}x of sequential, "
        f"{f.batch / f.one_order:.1f}x one order"
    )
    lines.append(f"  {'same batch, integrators answering at once':<50} {f.batch_instant * 1000:>8.0f} ms")
    lines.append(
        f"  {'POST /orders in process, warm':<50} {f.post_orders_ms:>8.1f} ms   "
        f"{f.post_orders_ms / f.bare_boto3_ms:.2f}x its {f.post_orders_calls} AWS calls with bare boto3 "
        f"({f.bare_boto3_ms:.1f} ms)"
    )
    p = r.package
    lines.append(
        f"\nDeployment package: {p.zipped_mb:.2f} MB zipped (Lambda limit {LAMBDA_ZIP_LIMIT_MB:.0f}), "
        f"{p.unzipped_mb:.2f} MB unzipped (limit {LAMBDA_UNZIPPED_LIMIT_MB:.0f})"
    )
    if r.heat is not None:
        lines.append("\n" + heat_console(r.heat))
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def _scale_rows() -> list[tuple[str, Callable[[Scale], str]]]:
    def span(costs: list[Any], attr: str) -> str:
        values = sorted({getattr(c, attr) for c in costs})
        return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"

    return [
        ("list page, 20 orders (admin, all orders)", lambda s: f"{s.list_page.requests} / {s.list_page.items_read}"),
        ("list page, 1 seller of 20 + status", lambda s: f"{s.seller_page.requests} / {s.seller_page.items_read}"),
        ("list page, status (admin)", lambda s: f"{s.status_page.requests} / {s.status_page.items_read}"),
        (
            "dispatch, 1 order x 3 integrators",
            lambda s: f"{span(s.dispatch, 'requests')} / {span(s.dispatch, 'items_read')}",
        ),
        ("callback", lambda s: f"{span(s.callback, 'requests')} / {span(s.callback, 'items_read')}"),
    ]


# --- document --------------------------------------------------------------------------------------------------


def _cold_remaining(colds: list[ColdStart]) -> str:
    """One bullet per function: its ratio and the imports it has beyond its floor (measured)."""
    return "\n".join(
        f"- **{c.function}**: {c.ratio:.2f}x ({_met(c.ratio <= GOAL_RATIO)}; before the cuts "
        f"{BEFORE_RATIOS.get(_short(c.function), 0):.2f}x); botocore clients built: "
        f"{', '.join(f'{n} x{k}' for n, k in _count(c.clients or []).items()) or 'none'}; imports beyond the floor's: "
        f"{_beyond_floor(c)}."
        for c in colds
    )


def _step_named(life: Life, prefix: str) -> Step:
    return next(s for s in life.steps if s.name.startswith(prefix))


def _kind_counts(life: Life) -> dict[str, int]:
    found: dict[str, int] = {}
    for step in life.steps:
        kind = _kind(step)
        if kind and kind not in ("authorizer", "sweeper"):
            found[kind] = found.get(kind, 0) + 1
    return found


def _machine() -> str:
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()} ({sys.implementation.name}), "
        f"{platform.system()} {platform.machine()}"
    )


def _bill_table(bills: list[Bill]) -> str:
    rows = ["| service | now | floor |", "| --- | ---: | ---: |"]
    for line in bills[0].lines:
        rows.append(f"| {line} | " + " | ".join(f"${b.lines[line]:,.2f}" for b in bills) + " |")
    rows.append("| **total per million orders** | " + " | ".join(f"**${b.total:,.0f}**" for b in bills) + " |")
    return "\n".join(rows)


def _steps_table(life: Life) -> str:
    rows = [
        f"| step | requests now | by operation | floor | before the cuts ({BEFORE_WHEN}) |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for step in life.steps:
        before = before_of(step)
        name = step.name.strip()
        rows.append(
            f"| {name} | {step.total} | {step.summary()} | {floor_of(step)} | {before if before is not None else '-'} |"
        )
    return "\n".join(rows)


def _remaining(life: Life) -> str:
    """Per kind of step (first of each): measured now, floor, and the operations measured, for the prose."""
    rows = ["| step | now | floor | over the floor | operations measured now |", "| --- | ---: | ---: | ---: | --- |"]
    seen: set[str] = set()
    for step in life.steps:
        kind = _kind(step)
        if kind in seen or kind in ("authorizer", "sweeper"):
            continue
        seen.add(kind)
        over = step.total - floor_of(step)
        rows.append(f"| {kind.strip() or step.name} | {step.total} | {floor_of(step)} | {over} | {step.summary()} |")
    return "\n".join(rows)


def import_app() -> tuple[float, list[str]]:
    """`python -X importtime -c "import app"` in a fresh interpreter: total ms and the packages outside the
    standard library it loads (what every function pays before its first line)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=ROOT,
        env={**os.environ, "ORDERS_QUEUE_NAME": "bench-import-only"},  # app.py wires its queue at import
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    total = 0.0
    packages: set[str] = set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        name = name.strip()
        if not cumulative.strip().isdigit():
            continue
        if name == "app":
            total = int(cumulative) / 1000
        top = name.split(".")[0]
        if top not in sys.stdlib_module_names and top != "app" and not top.startswith("_"):
            packages.add(top)
    return total, sorted(packages)


def _beyond_floor(row: ColdStart) -> str:
    """Packages the function imports that its floor (boto3 plus urllib) does not, most expensive first."""
    floor = row.floor_imports or {}
    extra = sorted(
        ((n, ms) for n, ms in (row.imports or {}).items() if n not in floor and n != "app" and ms >= 1),
        key=lambda item: -item[1],
    )
    return ", ".join(f"{name} {ms:.0f} ms" for name, ms in extra[:6]) or "nothing"


def _import_table(colds: list[ColdStart]) -> str:
    rows = [
        "| function | app / floor (ms) | ratio | AWS requests | botocore clients built | biggest imports (ms of own work) |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in colds:
        top = sorted((row.imports or {}).items(), key=lambda item: -item[1])[:7]
        imports = ", ".join(f"{name} {ms:.0f}" for name, ms in top)
        clients = ", ".join(f"{name} x{n}" for name, n in _count(row.clients or []).items())
        rows.append(
            f"| {row.function} | {row.real:.0f} / {row.floor:.0f} | {row.ratio:.2f}x | {row.requests} | {clients} | "
            f"{imports} |"
        )
    return "\n".join(rows)


def _count(items: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in items:
        found[item] = found.get(item, 0) + 1
    return found


def _phases(r: Results) -> str:
    return ", ".join(f"{name} {value:.0f} s" for name, value in r.timings.items() if not name.startswith("load"))


def _cold_rows(colds: list[ColdStart]) -> str:
    rows = []
    for c in colds:
        before = BEFORE_RATIOS.get(_short(c.function))
        shown = f"{before:.2f}x" if before else "-"
        rows.append(
            f"| cold start, {c.function} | {c.real:.0f} ms ({c.ratio:.2f}x) | floor {c.floor:.0f} ms | {shown} | "
            f"<= {GOAL_RATIO}x | {_met(c.ratio <= GOAL_RATIO)} |"
        )
    return "\n".join(rows)


def _step_rows(life: Life) -> str:
    rows = []
    seen: set[str] = set()
    for step in life.steps:
        kind = _kind(step)
        if kind in seen or kind in ("authorizer", "sweeper", ""):
            continue
        seen.add(kind)
        same = [s.total for s in life.steps if _kind(s) == kind]
        measured = str(same[0]) if len(set(same)) == 1 else f"{min(same)}-{max(same)}"
        rows.append(
            f"| requests per {kind.strip()} (x{len(same)} per life) | {measured} | floor {FLOORS[kind]} | "
            f"{BEFORE_STEPS[kind]} | - | - |"
        )
    return "\n".join(rows)


def _partition_rows(r: Results, order_writes: int, order_kb: float) -> str:
    """The capacity table's partition rows: from the partition-heat run when there is one (every key of every
    table and index, measured), else the estimate from the order row's writes."""
    if r.heat is None:
        return "| DynamoDB per partition key: 1,000 WCU/s | not measured in this run (`python -m bench.heat`) | - | - |"

    heat = r.heat
    rows = heat.rows()

    def keys_at(rate: int) -> str:
        over = [row for row in rows if row.units_per_second(rate) > PARTITION_WCU_LIMIT]
        if not over:
            top = max(rows, key=lambda row: row.units_per_second(rate))
            return f"every key under; hottest {top.target.name} `{top.label(rate)}` {top.units_per_second(rate):,.0f} WCU/s: fine"
        return "**over**: " + "; ".join(
            f"{row.target.name} `{row.label(rate)}` {row.units_per_second(rate):,.0f} WCU/s" for row in over
        )

    first = heat.first_limit()
    binds = f" **Binds first: {first.target.name} at {first.limit_rate:,.0f} orders/s.**" if first else ""
    return (
        f"| DynamoDB per partition key: {PARTITION_WCU_LIMIT:,} WCU/s, 3,000 RCU/s, and a throttled index holds back its table's writes; every key of every table and index measured (Partition heat, below) | {keys_at(100)}{binds} | {keys_at(2000)} | "
        "the shared keys are write-sharded (the orders list `o#<0..15>`, each integrator's deliveries `<name>#<0..15>`, the outbox `pending#<0..31>` when a send fails, the overdue list `overdue#<0..15>`) and the list indexes hold keys and parties only, so a status move writes no index; more shards (`ORDER_SHARDS`, `PORTAL_SHARDS`) raise the limit in proportion, at one more `Query` per shard on a list page; a seller above ~1,000 orders/s would need its key sharded too |"
    )


def _first_limit(r: Results) -> str:
    first = r.heat.first_limit() if r.heat is not None else None
    if first is None:
        return "Partition heat was not measured in this run, so the first partition limit is not named here"
    return (
        f"So the first limit hit is the key `{first.label()}` of {first.target.name}, measured: it reaches "
        f"{PARTITION_WCU_LIMIT:,} WCU/s at {first.limit_rate:,.0f} orders/s"
    )


HEAT_BEFORE = ROOT / "bench" / "heat_before.md"


def _heat_section(r: Results) -> str:
    """Partition heat as measured in this run, and the table measured before issue 22's data-model change."""
    parts = []
    if r.heat is not None:
        parts.append(f"""
## Partition heat (issue 22)

Every item write of a run, counted inside moto on the partition key it lands on, in each table and in each of its
global secondary indexes (`bench/heat.py`, counted by `bench/heat_run.py`; `python -m bench.heat` alone; the tables and indexes come from
infra/resources.py, so an index added later is measured too). Billed as DynamoDB bills it: 1 KB write units, the
larger of the item before and after, twice that for a `TransactWriteItems` item on its table; an index write only
when the item's entry in that index changes (none for an item outside a sparse index), a changed index key as a
delete on the old key and a put on the new one. DynamoDB serves {PARTITION_WCU_LIMIT:,} write units per second on one
partition key, and a throttled index holds back its table's writes. `tests/functional/test_partition_heat.py` runs
the counter on 20 orders.

{heat_markdown(r.heat)}

### Every write of an order's life, and why

The same run's writes by step and kind of item (`bench/ledger.py`): each is there for a guarantee or a view
someone uses; a write without a reason shows as "not justified" here and fails the partition-heat test.

{ledger_markdown(r.heat)}
""")
    if HEAT_BEFORE.exists():
        parts.append("\n" + HEAT_BEFORE.read_text().strip() + "\n")
    return "".join(parts)


def document(r: Results, seconds: float) -> str:  # noqa: PLR0915 - one linear document
    warm, cold = r.lives.warm, r.lives.cold
    now = usage_now(warm)
    sizes = warm.sizes
    measured = r.heat.total_units_per_order if r.heat is not None else None
    floor_use = usage_floor(now, warm)
    floor_units = None
    if r.heat is not None:  # the floor's writes at the write units per write the heat run measured
        per_write = r.heat.total_units_per_order / r.heat.total_writes_per_order
        floor_units = (floor_use.order_writes + floor_use.delivery_writes + ORDER_INDEX_UNITS_PER_LIFE) * per_write
    bills = [bill(now, sizes, measured_write_units=measured), bill(floor_use, sizes, measured_write_units=floor_units)]
    f = r.fan
    today = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    import_ms, imported = import_app()
    cold_met = all(c.ratio <= GOAL_RATIO for c in r.colds)
    not_met = [c for c in r.colds if c.ratio > GOAL_RATIO]
    scale_rows = _scale_rows()
    scale_table = "\n".join(
        ["| per request | " + " | ".join(f"{s.size:,} orders" for s in r.scales) + " |"]
        + ["| --- |" + " ---: |" * len(r.scales)]
        + [
            f"| {label} (requests / items read) | " + " | ".join(get(s) for s in r.scales) + " |"
            for label, get in scale_rows
        ]
    )
    fill = ", ".join(f"{s.size:,}: {s.fill_seconds:.0f} s" for s in r.scales)
    order_kb = sizes["orders"]
    floor_use = usage_floor(now, warm)
    api_busy_2000 = 14000 * sum(s.seconds for s in warm.steps if s.name.startswith(("create", "callback"))) / 7
    return f"""# Benchmarks: AWS requests, dollars, cold start, scaling (issue 14)

Measured {today} on {_machine()}, in {seconds:.0f} s ({_phases(r)}); load average
{r.load[0]:.1f} before and {r.load[1]:.1f} after (other work on the machine slows the timed figures; the
request counts do not move). AWS is a moto server on loopback; integrators are a local HTTP server. Reproduce with `make bench` (writes this file); `BENCH_RUNS=5 BENCH_QUICK=1 make bench` is a quicker
look (5 cold starts per function, 3,000 orders instead of 50,000). Every figure below was measured in this run
beside its baseline, except the prices and the limits, which are cited, and the "before the cuts" figures, which
are constants: they were measured by `make bench` on {BEFORE_WHEN}, on the code before this session's cuts (that
code is gone).

## Summary against the goals

| figure | measured now | baseline or floor (same run) | before the cuts ({BEFORE_WHEN}) | goal | met? |
| --- | ---: | ---: | ---: | ---: | --- |
| AWS requests per order life, warm containers | {warm.total()} | floor {_per_life_floor(warm)}; issue 14 counted {ISSUE_COUNT} | {BEFORE_WARM} | <= {GOAL_REQUESTS} | {_met(warm.total() <= GOAL_REQUESTS)} |
| AWS requests per order life, fresh containers | {cold.total()} | same floor | {BEFORE_FRESH} | <= {GOAL_REQUESTS} | {_met(cold.total() <= GOAL_REQUESTS)} |
{_step_rows(warm)}
| dollars per million orders | ${bills[0].total:,.0f} | floor ${bills[1].total:,.0f} | ${BEFORE_DOLLARS} | - | - |
{_cold_rows(r.colds)}
| list page with {r.scales[0].size:,} vs {r.scales[-1].size:,} orders | {r.scales[-1].list_page.requests} request, {r.scales[-1].list_page.items_read} items | {r.scales[0].list_page.requests} request, {r.scales[0].list_page.items_read} items | - | equal | {_met((r.scales[0].list_page.requests, r.scales[0].list_page.items_read) == (r.scales[-1].list_page.requests, r.scales[-1].list_page.items_read))} |
| fan-out: 10 orders x 3 integrators (100 ms each) | {f.batch * 1000:.0f} ms | sequential {f.sequential * 1000:.0f} ms; one order {f.one_order * 1000:.0f} ms | - | well under sequential | {_met(f.batch < f.sequential)} ({f.batch / f.sequential:.2f}x) |
| in-process POST /orders, warm | {f.post_orders_ms:.1f} ms | its {f.post_orders_calls} AWS calls with bare boto3: {f.bare_boto3_ms:.1f} ms | - | - | {f.post_orders_ms / f.bare_boto3_ms:.2f}x |
| deployment package | {r.package.zipped_mb:.2f} MB zipped, {r.package.unzipped_mb:.2f} MB unzipped | Lambda limits {LAMBDA_ZIP_LIMIT_MB:.0f} MB / {LAMBDA_UNZIPPED_LIMIT_MB:.0f} MB | - | under | {_met(r.package.zipped_mb < LAMBDA_ZIP_LIMIT_MB and r.package.unzipped_mb < LAMBDA_UNZIPPED_LIMIT_MB)} |

Requests per order life: goal {_met(warm.total() <= GOAL_REQUESTS)} ({warm.total()} warm, {cold.total()} fresh,
against {GOAL_REQUESTS}; {warm.total() - _per_life_floor(warm)} above the floor, see "What remains" below). Cold
start: goal {"met for every function" if cold_met else "not met for " + ", ".join(f"{_short(c.function)} ({c.ratio:.2f}x)" for c in not_met)}
(ratios are medians of {r.runs} alternating pairs on a shared, loaded machine: a few hundredths either way are
noise).

## AWS requests of one order's life

Counted by `bench/aws_requests.py`: every botocore client (boto3's, pynamodb's own session, Powertools') gets a
`before-send` hook registered first, so every HTTP attempt is counted, retries included. The life: `POST /orders`
with a seller token, the dispatcher's SQS batch (one order to three integrators answering 200), six signed
callbacks as the demo partners send them (food-ordering accepted, loyalty accepted, food-ordering preparing and
ready, delivery picked_up and delivered), and the notifications each change publishes. Not counted: what only the
local stack does in Lambda's place (the event source's ReceiveMessage polling); the event source's
DeleteMessageBatch is counted, once per batch. The authorizer and the sweeper are shown apart: API Gateway caches
the authorizer's answer per token for 60 s, and the sweeper runs every minute whatever the traffic.

Warm containers (the steady state; the dispatch moves the order to `dispatched` with one conditional write after
its deliveries, so there is no race between delivery threads left to add requests):

{_steps_table(warm)}

| order life | requests | by operation |
| --- | ---: | --- |
| warm containers ({BEFORE_WARM} before the cuts) | {warm.total()} | {", ".join(f"{s}.{o} {n}" for (s, o), n in warm.counts().most_common())} |
| fresh containers (first order after a deploy; {BEFORE_FRESH} before the cuts) | {cold.total()} | {", ".join(f"{s}.{o} {n}" for (s, o), n in cold.counts().most_common())} |
| `POST /orders` with an `Idempotency-Key` | {r.lives.keyed_create.total} | {r.lives.keyed_create.summary()} |

### The floor of each step

The floor is the fewest requests that keep the step's guarantees: every write conditional (no lost update), a
redelivered message or a repeated webhook id changes nothing (idempotency), nothing accepted is lost.

- **create: 3.** One conditional `UpdateItem` of the seller's create-quota counter (its own key per seller and
  second: the write is the check, no read); one `SendMessage` of the create's event, then one conditional
  `PutItem` (`attribute_not_exists(id)`) of the order: sent first, so no outbox index entry is needed (the
  dispatcher waits for an order its event outran; a send that fails falls back to the indexed outbox mark the
  sweeper finds). The event stays on the row until the dispatcher's `dispatched` write removes it (`REMOVE
  outbox` in the same `UpdateItem`), at no extra request. With an
  `Idempotency-Key` the floor stays 3: derive the order id from the (token, key) pair and the same conditional
  `PutItem` refuses the second create; only a replay pays a `GetItem` for the stored order.
- **dispatch of one order to three integrators: 6** (one batch). `GetItem` of the order (the content to send);
  per integrator one conditional write after the POST (`UpdateItem` of the delivery row, `NOT
  contains(delivered_webhook_ids, :id)`, which is also what makes a redelivered message a no-op): 3; one
  conditional `UpdateItem` moving the order to `dispatched` (condition on the status, no read first); one
  `DeleteMessageBatch` per batch (a tenth of a request per order in full batches). A claim write before the POST
  is not needed for the guarantees (integrators deduplicate on the webhook id, so a crash between POST and
  write only repeats a POST); keeping it (it shows a crashed delivery as `pending`) makes 9.
- **notification: 1.** One `Publish`. The conditional status write that caused it has exactly one winner, so
  only that writer publishes: no idempotency record is needed to publish once.
- **callback that moves the order: 2** (+ its notification). One conditional `UpdateItem` of the delivery row
  (`has_order`, the integrator's own progress moves forward, the webhook id not among the last ones seen, the
  answer stored with it for replays) and one conditional `UpdateItem` of the order (`status_rank < :new`,
  `ReturnValues=ALL_NEW` for the notification). A repeated webhook id fails the first condition and is answered
  from the stored answer (`ReturnValuesOnConditionCheckFailure=ALL_OLD`).
- **callback that does not move the order: 2.** The delivery row's conditional write, and a `GetItem` of the
  order that shows it is already further along (cheaper than an order write that fails its condition, which
  is still a request and a write unit).
- **authorizer: 1** `GetItem` per token per 60 s (0 on an API Gateway cache hit).
- **sweeper, idle: 1** `Query` of the sparse outbox index per run (43,200 a month, whatever the traffic).

Per order life: {" + ".join(f"{n} x {FLOORS[k]}" if n > 1 else str(FLOORS[k]) for k, n in _kind_counts(warm).items())} = **{_per_life_floor(warm)}** at the floor.

### The cuts made this session

The requests the code made before the cuts ({BEFORE_WHEN}: {BEFORE_WARM} per warm life), the call that made
them and what the code does now. Module and function names are those of `main` now.

| # | step | requests the code made before | what the code does now | saved per life |
| --- | --- | --- | --- | ---: |
| 1 | every delivery | `PutItem` + `UpdateItem` on the idempotency table (`run_once(_attempt, ...)`) | no idempotency record: the delivery is claimed on its state row (`dispatch/delivery.py` `_claim`, a conditional write carrying the run), which is what makes a redelivered message a no-op | 6 |
| 2 | every callback | `PutItem` + `UpdateItem` on the idempotency table (`run_once(_apply, ...)`) | `callbacks.py` `_apply`: the webhook id and its answer are kept on the delivery row (`callback_answers`), written by the row's own conditional write; a repeated id is answered from the row | 12 |
| 3 | every notification | `PutItem` + `UpdateItem` on the idempotency table | `notify(winner=True)`: only the winner of the conditional status write publishes, directly | 12 |
| 4 | every delivery | `GetItem` of the integrator | the `Integrator` the batch loaded is passed to `deliver` | 3 |
| 5 | every delivery | `GetItem` of the order | `dispatch/order_events.py` `handle_order_event` reads the order once for all deliveries | 3 |
| 6 | every delivery | `GetItem` before the claim | the state rows from one `list_states` Query, their revision as the claim's condition (re-read only on a conflict) | 3 |
| 7 | every delivery | `GetItem` before the outcome write | `db/deliveries.py` `put_state_with_attempt`: the outcome written on the revision the claim wrote (re-read only on a conflict); its attempt line is a `PutItem` of its own again since issue 22 (keyed by the job run, so a rerun replaces it), which costs a request but halves the write units of a `TransactWriteItems`. Not a list of attempts on the row: attempt bodies reach 4 KB, would grow the row every callback rewrites (write units) and would lose the attempt lines' 30-day expiry | 3 |
| 8 | every delivery | `GetItem` of the order (on the race also a failed `PutItem` and a re-read) | `order_events._settle`: one conditional write to `dispatched` per order once its deliveries finish, also clearing the outbox; no race between delivery threads | 3 (2-5) |
| 9 | create | `UpdateItem` clearing the outbox | create leaves its outbox mark to the dispatcher's `dispatched` write (cut 8); updates and cancels keep the clearing write | 1 |
| 10 | every batch | `Scan` of the integrators table | integrators (with their secrets) cached per container (`CACHE_SECONDS`) | 1 |
| 11 | every callback | `GetItem` of the integrator | the same per-container cache (a signature failure re-reads, fresh) | 6 |
| 12 | every callback | second `GetItem` of the delivery row | the row `_apply` read, its revision as the condition (re-read only on a conflict) | 6 |
| 13 | every callback | second `GetItem` of the order | `apply_status(..., current=order)`: the order `_apply` read, its version as the condition | 6 |
| 14 | fresh containers | 3 `GetSecretValue`, and a botocore client per thread and per library | secrets read through the shared per-process client (`chalicelib/aws.py` `client()`), one botocore session and one client per service per process; still one `GetSecretValue` per integrator | clients, not requests |

Cold start (the same session): `import app` no longer loads pydantic, Powertools or boto3 (the authorizer's
`Principal` is a plain dataclass, observability objects are built on first use, route modules import their models
when called), and every function shares one botocore session and one client per service per process.

### What remains between now and the floor

Measured now, first step of each kind (warm containers):

{_remaining(warm)}

- **dispatch**: besides the floor's order `GetItem`, three outcome writes (each a conditional `PutItem` of the state
  row after a `PutItem` of its attempt line keyed by the job's run: two requests, but one write unit per KB
  instead of the two a `TransactWriteItems` bills per item; issue 22), the `dispatched` write and the `DeleteMessageBatch`, the code makes:
  the `Query` of the order's state rows (`handle_order_event` -> `list_states`: it decides per integrator whether
  the event still needs sending, supersedes unsent creates of a cancelled order, and gives each claim its
  revision); one claim `PutItem` per integrator before the POST (`claims.claim`: marks the delivery in flight
  with its run and `claimed_until`, so a crash mid-POST shows and a redelivered message does not POST in parallel);
  and one health-counter `UpdateItem` (ADD) per integrator and batch-minute (`dispatch/health_tally.py` `flush`,
  a tenth of a request per order in full batches, a whole one in the one-order batches measured here). Dropping
  the Query and the claims is possible (integrators deduplicate on the webhook id) but gives up those guarantees.
- **callback**: the floor writes the delivery row and the order with condition expressions and no reads
  (`status_rank` on the order, the webhook ids in the row's condition, `ReturnValuesOnConditionCheckFailure` to
  answer a replay). The code reads the delivery row (`get_state`: the stored answers, the acknowledgement window
  and the revision the write is conditional on) and the order (`order_store.get`: `_decide` needs its status and
  version) before writing: 2 reads per callback, 12 per life. A non-moving callback's order read is part of its
  floor.
- **create, notification**: at the floor. A create with an `Idempotency-Key` measures
  {r.lives.keyed_create.total} ({r.lives.keyed_create.summary()}), floor 2.
- **fresh containers** ({cold.total()} against {warm.total()} warm, goal {_met(cold.total() <= GOAL_REQUESTS)}): the
  first batch of a container also fills its caches: the integrators `Scan`, one `GetSecretValue` per integrator
  (one secret holding every integrator's secrets would make it 1) and each integrator's circuit row (`GetItem`).
  Measured fresh dispatch: {_step_named(cold, "dispatch").summary()}.
- **sweeper, idle** ({_step_named(warm, "sweeper").total} per run, every minute, whatever the traffic; floor 1,
  {BEFORE_STEPS["sweeper"]} before the cuts): {_step_named(warm, "sweeper").summary()}. Besides the outbox index
  `Query`, `dispatch/waiting.py` `sweep` (re-sends a lost `DrainWaiting` or `ProbeCircuit`) reads the integrators,
  each integrator's circuit row and its waiting deliveries, one `Query` per index shard (`INDEX_SHARDS`) per
  integrator: {43200 * _step_named(warm, "sweeper").total:,} requests a month. Not per order, so outside the goal,
  but one sparse "something waits" marker per integrator would bring it back to a few requests.

## Dollars per million orders

List prices as published on the AWS pricing pages ({PRICES_AS_OF}): API Gateway REST $3.50 per million requests;
Lambda $0.20 per million requests and $0.0000166667 per GB-second (x86); DynamoDB on-demand $0.625 per million write
request units (1 KB) and $0.125 per million read request units (4 KB, strongly consistent); SQS standard $0.40 per
million requests; SNS $0.50 per million publishes (mobile push deliveries are billed on top); Secrets Manager
$0.05 per 10,000 calls. They were not re-checked when this file was written (no network here).

Model (warm containers, from this run): 7 API requests (the create and six callbacks; clients' reads apart);
9 Lambda invocations (create, authorizer, one dispatcher batch per order as measured (a tenth with full batches),
six callbacks) at the prod stage's memory sizes and the durations measured in process (each step's median over
{WARM_LIVES} warm lives: the machine is shared); item sizes measured
(order {order_kb:.2f} KB, delivery-table item {sizes["deliveries"]:.2f} KB on average). DynamoDB write units are
the partition-heat run's (below): every item write of an order's life counted on the table and on each index it
really changes, billed per KB (issue 22's layout: the list indexes take an order's keys and parties once, at
create, and no status move writes an index); no idempotency records are written; reads at one unit each. The
floor column models the floor's requests (7 order writes, 10 delivery-table writes, the {ORDER_INDEX_UNITS_PER_LIFE} index entries an
order's lists need; at the write units per write the heat run measured), with the Lambda time scaled by floor over
measured requests.

{_bill_table(bills)}

Before issue 22 DynamoDB writes dominated ($77 of $116), most of them the order row's five ALL-projection
indexes; the sharded, keys-and-parties layout and plain outcome writes (no transaction) took them to the write
units the heat table measures.

## Cold start per function

A fresh interpreter (`python -m bench.coldstart`) starts its clock before anything but the standard library is
imported, imports `app`, and serves the function's first event against the moto server (the API's first
`POST /orders` with the authorizer's context, the authorizer's first token, the dispatcher's first batch of one
order to three integrators, a first callback). The floor is a fresh interpreter that imports boto3 and replays the
very AWS calls that function made (recorded in a warm-up run, same parameters, one client per service) and the
same integrator POSTs with urllib. {r.runs} runs each, function and floor alternating; the ratio is the median of
the per-pair ratios. Import costs come from `python -X importtime` (each module's own time, summed per package).

{_import_table(r.colds)}

Where the time goes now:

- **`import app`** (measured in this run with `python -X importtime -c "import app"`, a fresh interpreter:
  {import_ms:.0f} ms on this loaded machine) loads, outside the standard library, only {", ".join(f"`{name}`" for name in imported)}:
  no pydantic, Powertools, boto3/botocore or pynamodb. Every function pays that before its first line; what a
  function needs beyond it, it imports on its first event.
{_cold_remaining(r.colds)}
- **What remains** for the dispatcher and the callback is the imports listed above that their floor (boto3 and
  urllib) does not have: the service's pydantic models (every row read and written goes through them), pynamodb
  on top of botocore, Powertools Logger/Metrics (built on first use, but used by every path), and for the
  dispatcher `requests` (its sender; the floor POSTs with urllib) and the batch's Powertools batch utilities.
  Deferring model building (`defer_build=True` on models a function does not touch) or leaner models for the
  hot paths are the next steps. The botocore clients are already one per service, as in the floor.

Cross-check (once, {BEFORE_WHEN.split()[0]}, before the cuts, load average about 6): the authorizer's ratio taken
as whole-process figures (interpreter start to exit, 15 alternating pairs, medians) gave wall 1.50x and CPU 1.57x
against 1.49x measured in process: the in-process clock and the whole-process clock agree on the ratio.

## Scaling: cost per request with {r.scales[0].size:,} and with {r.scales[-1].size:,} orders

The orders table was filled with `BatchWriteItem` straight to DynamoDB, cloning an order the API created (fill
time {fill}). Items read is the `ScannedCount` of each Query or Scan plus one per `GetItem` that found an item.

{scale_table}

A list page is one `Query` of one index with `Limit`, whatever the table holds; a dispatch and a callback touch
only their order's rows (the integrators come from the per-container cache). A range in a cell means the count
varied between the orders measured at that size.

## Fan-out

One SQS batch of 10 orders to 3 integrators that each answer after 100 ms, median of 3, against the same 30 POSTs
made one after another (measured in the same run) and against a batch of one order:

| | wall time |
| --- | ---: |
| baseline: 30 POSTs one after another | {f.sequential * 1000:.0f} ms |
| one order (3 integrators at once) | {f.one_order * 1000:.0f} ms |
| batch of 10 orders (30 deliveries) | {f.batch * 1000:.0f} ms ({f.batch / f.sequential:.2f}x sequential) |
| same batch, integrators answering at once | {f.batch_instant * 1000:.0f} ms |

The deliveries run side by side: the integrators' 100 ms add about {max(0.0, f.batch - f.batch_instant) * 1000:.0f}
ms to the batch, not 30 x 100 ms. Nearly all the rest is the moto server emulating the batch's DynamoDB, SQS and
SNS requests (about {r.lives.warm.steps[0].total + sum(s.total for s in r.lives.warm.steps if s.name.startswith("dispatch"))} per order for create and dispatch, measured above) on this 2-core machine.

In process, warm: `POST /orders` through the app (chalice.test.Client, authorizer included, bootstrap token from
the environment) takes {f.post_orders_ms:.1f} ms against {f.bare_boto3_ms:.1f} ms for its {f.post_orders_calls} AWS
calls replayed with bare boto3: {f.post_orders_ms / f.bare_boto3_ms:.2f}x; the difference is validation, pydantic
models and the test client.

## Package

`make package` (tools/package.py: `chalice package`, boto3/botocore and their dependencies removed because the
Lambda runtime provides them): **{r.package.zipped_mb:.2f} MB zipped, {r.package.unzipped_mb:.2f} MB unzipped**,
against Lambda's {LAMBDA_ZIP_LIMIT_MB:.0f} MB (direct upload) and {LAMBDA_UNZIPPED_LIMIT_MB:.0f} MB limits. Every
function ships the same zip; a smaller one (no moto-only or dev dependencies, no `cryptography` if nothing at
runtime needs it) shortens the code download of each cold start.

## Scale on paper: 100 and 2,000 orders per second, three integrators

Per order today (warm): 7 API requests, ~{warm.total()} AWS requests, of them {now.order_writes} writes of the
{order_kb:.1f} KB order row ({BEFORE_WARM} requests before the cuts, {BEFORE_WHEN}).

| limit (default) | at 100 orders/s | at 2,000 orders/s | what keeps the service under it |
| --- | --- | --- | --- |
{_partition_rows(r, now.order_writes, order_kb)}
| DynamoDB on-demand: 40,000 RCU and 40,000 WCU per table (account quota); a new on-demand table serves 4,000 writes/s at once and doubles from its peak | ~{100 * (now.order_writes + now.delivery_writes + now.other_writes)} writes/s before index units: fine | ~{2000 * (now.order_writes + now.delivery_writes + now.other_writes):,} writes/s, before index units: over | fewer writes per order (the floor's {floor_use.order_writes + floor_use.delivery_writes}); warm throughput (pre-warming) before launch; a quota increase |
| Lambda concurrency: 1,000 per region | API: 700 requests/s x ~{1000 * sum(s.seconds for s in warm.steps if s.name.startswith(("create", "callback"))) / 7:.0f} ms = ~{700 * sum(s.seconds for s in warm.steps if s.name.startswith(("create", "callback"))) / 7:.0f} concurrent; dispatcher: see next row | 14,000 requests/s: ~{api_busy_2000:.0f} concurrent: {"over the limit" if api_busy_2000 > 1000 else "under the limit"} | a concurrency quota increase; shorter handlers (the cuts); reserved concurrency for the dispatcher so the API cannot starve it |
| SQS event source: `maximum_concurrency` {_max_concurrency()} (prod), reserved concurrency 50 | 100 orders/s in batches of one (no batching window) x ~{f.one_order * 1000:.0f} ms = ~{100 * f.one_order:.0f} concurrent: **{"over the cap" if 100 * f.one_order >= _max_concurrency() else f"{100 * f.one_order / _max_concurrency():.0%} of the cap"}**; in full batches 10/s x ~1 s = 10 | 200 full batches/s x ~1 s: ~200 concurrent: over | `MaximumBatchingWindowInSeconds` 1-2 s so batches fill (merge template), `maximum_concurrency` and reserved concurrency raised together, integrator timeouts kept short |
| API Gateway: 10,000 requests/s steady, 5,000 burst per account and region | 700 requests/s: fine | 14,000 requests/s: **over** | a quota increase; integrators batching their callbacks would need an API change |
| Secrets Manager: 10,000 GetSecretValue/s | containers x 3 integrators per 300 s: negligible | negligible | the per-container cache (already there) |
| SNS Publish: 30,000 messages/s (us-east-1) | 600/s | 12,000/s: fine | - |
| SQS standard | nearly unlimited | nearly unlimited | - |

{_first_limit(r)} (and, with
single-order batches, the dispatcher's event-source concurrency cap of {_max_concurrency()} comes next). At 2,000 per second no
partition key is over its limit; what is over there is account-wide: API Gateway's request throttle, the SQS
event source's concurrency and, without a quota increase, the tables' on-demand throughput and Lambda's regional
concurrency. At 10,000 orders/s the shared keys (16 shards) reach their limit first; 32 shards would carry them.
{_heat_section(r)}"""
