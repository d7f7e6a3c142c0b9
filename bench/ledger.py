"""Every item write of an order's life, measured by the partition-heat run (bench/heat.py) and justified one by one
(issue 22: "each write justified, as the request floor is"). A write the run makes that has no reason below shows
as "not justified" in docs/benchmarks.md and fails tests/functional/test_partition_heat.py: a new write must say
why it is worth its cost."""

from __future__ import annotations

from bench.heat import Heat

STEPS = ("create", "dispatch", "callbacks")

# (step, table or index, kind of item) -> why the write is made. Kinds come from bench.heat_run.item_kind.
WHY: dict[tuple[str, str, str], str] = {
    ("create", "deliveries (table)", "create quota counter"): (
        "the seller's create quota (`SELLER_ORDERS_PER_SECOND`): one conditional `ADD` on `quota#<seller>#<second>`, "
        "the write is the check (no read); without it one seller's burst takes the others' capacity (issue 20)"
    ),
    ("create", "orders (table)", "order row"): (
        "the order itself, conditional on its id being new; its event rides on the row until the dispatcher has it"
    ),
    ("create", "orders by_shard", "order row"): (
        "the list of all orders (operators): keys and parties only, written once, never by a status move"
    ),
    ("create", "orders by_seller_keys", "order row"): "a seller's list of its orders: as above",
    ("create", "orders by_user_keys", "order row"): "a customer's list of their orders: as above",
    ("create", "orders outbox", "order row"): (
        "only when the create's send failed: the sweeper finds the order through this index and sends its event"
    ),
    ("dispatch", "deliveries (table)", "delivery row, created"): (
        "the claim before the POST: the delivery in flight with its run and `claimed_until`, so a crash mid-POST "
        "shows as `pending` and a redelivered message does not POST in parallel"
    ),
    ("dispatch", "deliveries by_integrator", "delivery row, created"): (
        "the partner portal's list of its deliveries (issue 24): keys only, written once, when the row is created"
    ),
    ("dispatch", "deliveries (table)", "attempt line"): (
        "the attempt log the console and the portal show (request as sent, response, latency), expiring after "
        "30 days; keyed by the job's run, so a rerun replaces its line instead of adding one"
    ),
    ("dispatch", "deliveries (table)", "delivery row"): (
        "the outcome, conditional on the claim's revision: `delivered` with the webhook id that makes a redelivered "
        "message a no-op (or `retrying`, `failed`)"
    ),
    ("dispatch", "orders (table)", "order row"): (
        "the move to `dispatched` once the order's deliveries ran; the same write removes the create's event"
    ),
    ("dispatch", "deliveries (table)", "health counter"): (
        "the integrator's health counters (the health endpoint, the console): one `ADD` per integrator and "
        "batch-minute: a tenth of a write per order in full batches of 10, 3 when every order is a batch of its own "
        "(an order's life is then 32 writes)"
    ),
    ("callbacks", "deliveries (table)", "delivery row"): (
        "the partner's report, its acknowledgement and the answer kept for replays, conditional on the row's "
        "revision (one per callback)"
    ),
    ("callbacks", "orders (table)", "order row"): (
        "the status move the callback reports, conditional on the version read (5 of the 6 callbacks move the order)"
    ),
}


def lines(heat: Heat) -> list[tuple[str, str, str, float, str]]:
    """(step, table or index, kind, writes per order, why) for every kind of write the run made, step by step."""
    found = []
    for (step, target, kind), writes in heat.items.items():
        why = WHY.get((step, target, kind), "**not justified**")
        found.append((step, target, kind, writes / heat.orders, why))
    order = {name: n for n, name in enumerate(STEPS)}
    return sorted(found, key=lambda line: (order.get(line[0], len(STEPS)), -line[3], line[1]))


def unjustified(heat: Heat) -> list[tuple[str, str, str]]:
    return [(step, target, kind) for step, target, kind, _, why in lines(heat) if why == "**not justified**"]


def markdown(heat: Heat) -> str:
    rows = [
        "| step | table / index | item | writes per order | why |",
        "| --- | --- | --- | ---: | --- |",
    ]
    rows += [f"| {step} | {target} | {kind} | {per:.1f} | {why} |" for step, target, kind, per, why in lines(heat)]
    rows.append(f"| | | **every write of the life** | **{heat.total_writes_per_order:.1f}** | |")
    return "\n".join(rows)
