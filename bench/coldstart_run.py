"""Parent side of the cold-start benchmark: prepares one event per run in a moto server, then runs fresh
interpreters (bench/coldstart.py) for each function and its bare-boto3 floor, alternately."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.coldstart import rest_event
from bench.stack import REGION, api_client, call, register_partners, signed, stack

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ColdStart:
    function: str
    real_ms: list[float]
    floor_ms: list[float]
    real_import_ms: list[float]
    floor_import_ms: list[float]
    requests: int
    posts: int
    clients: list[str] | None = None
    imports: dict[str, float] | None = None
    floor_imports: dict[str, float] | None = None

    @property
    def ratio(self) -> float:
        """Median of the per-pair ratios (pairs ran back to back)."""
        return statistics.median(r / f for r, f in zip(self.real_ms, self.floor_ms, strict=True))

    @property
    def real(self) -> float:
        return statistics.median(self.real_ms)

    @property
    def floor(self) -> float:
        return statistics.median(self.floor_ms)


def _child(mode: str, spec: dict[str, Any], tmp: Path, *flags: str) -> dict[str, Any]:
    path = tmp / f"spec-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, *flags, "-m", "bench.coldstart", mode, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child ({mode}) failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if flags:
        result["importtime"] = _import_costs(done.stderr)
    return result


def _import_costs(stderr: str) -> dict[str, float]:
    """`python -X importtime` output -> ms of import work per top-level package (each module's *self* time, so
    nothing counts twice), the bench's own modules left out."""
    costs: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        head, _, name = line.split("|")
        own = head.removeprefix("import time:").strip()
        if not own.isdigit():
            continue
        root = name.strip().split(".")[0]
        if root in ("bench",):
            continue
        costs[root] = costs.get(root, 0.0) + int(own) / 1000
    return costs


def _profile(spec: dict[str, Any], tmp: Path, out: Path, name: str) -> None:
    """One more cold start under cProfile, its stats kept as `<out>/<function>.prof` (read with pstats/snakeviz)."""
    import shutil

    path = tmp / f"spec-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(spec))
    subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.coldstart", "profile", str(path)], cwd=ROOT, check=True, capture_output=True
    )
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(f"{path}.prof", out / f"{name.split(':')[0]}.prof")


def measure(runs: int = 15, profile_to: Path | None = None) -> list[ColdStart]:
    """Cold starts of every function against their floors; with `profile_to`, one profiled cold start each too."""
    import boto3

    from tests.support.fake_integrator import FakeIntegrator
    from tools.localstack import example_order
    from tools.poller import to_lambda_event

    results: list[ColdStart] = []
    with stack("cold") as env, FakeIntegrator() as fake, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        import app as application

        with api_client(application.app, tmp) as client:
            secrets = register_partners(client, fake, ("food-ordering", "delivery", "loyalty"))
            issued = call(client, "POST", "/api/v1/tokens", {"role": "seller", "seller_id": "s-1"}).json_body
            seller = {"role": "seller", "token_id": issued["id"], "seller_id": "s-1", "principalId": issued["id"]}
            # One order (and so one queue message) per dispatcher run; the dispatched orders feed the callbacks.
            for _ in range(runs + 3):
                call(client, "POST", "/api/v1/orders", json.loads(example_order()))
        sqs = boto3.client("sqs", region_name=REGION)
        url = env["ORDERS_QUEUE_URL"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        messages: list[dict[str, Any]] = []
        while len(messages) < runs + 3:
            messages += sqs.receive_message(  # type: ignore[arg-type]
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            ).get("Messages", [])
        order_ids = [json.loads(m["Body"])["order_id"] for m in messages]

        def api_spec(n: int) -> dict[str, Any]:
            event = rest_event(
                "POST",
                "/api/v1/orders",
                "/api/v1/orders",
                example_order(),
                {"content-type": "application/json"},
                authorizer=seller,
            )
            return {"handler": "api", "event": event, "expect": 201}

        def auth_spec(n: int) -> dict[str, Any]:
            event = {
                "type": "TOKEN",
                "authorizationToken": f"Bearer {issued['token']}",
                "methodArn": "arn:aws:execute-api:us-east-1:123456789012:bench/api/POST/api/v1/orders",
            }
            return {"handler": "bearer_auth", "event": event, "expect": "allow"}

        def dispatch_spec(n: int) -> dict[str, Any]:
            return {"handler": "dispatch_orders", "event": to_lambda_event([messages[n]], arn, REGION), "expect": None}

        def callback_spec(n: int) -> dict[str, Any]:
            body = json.dumps({"order_id": order_ids[n], "status": "accepted"})
            headers = {
                **signed(secrets["food-ordering"], f"cb_cold_{n}_{time.monotonic_ns()}", body),
                "content-type": "application/json",
            }
            event = rest_event(
                "POST",
                "/api/v1/callbacks/{integrator}",
                "/api/v1/callbacks/food-ordering",
                body,
                headers,
                path_params={"integrator": "food-ordering"},
            )
            return {"handler": "api", "event": event, "expect": 200}

        plans = [
            ("api: first POST /orders", api_spec),
            ("authorizer: first token", auth_spec),
            ("dispatcher: first batch (1 order, 3 integrators)", dispatch_spec),
            ("callback: first one", callback_spec),
        ]
        for name, make in plans:
            before = len(fake.requests())
            recorded = _child("record", make(0), tmp)  # warm-up, not counted: what the floor must replay
            posts = [fake.url(r.path) for r in fake.requests()[before:]]
            floor_spec = {"calls": recorded["calls"], "posts": posts}
            row = ColdStart(name, [], [], [], [], recorded["requests"], len(posts), recorded["clients"])
            row.imports = _child("real", make(runs + 1), tmp, "-X", "importtime")["importtime"]
            row.floor_imports = _child("floor", floor_spec, tmp, "-X", "importtime")["importtime"]
            if profile_to is not None:
                _profile(make(runs + 2), tmp, profile_to, name)
            for n in range(1, runs + 1):
                real = _child("real", make(n), tmp)
                floor = _child("floor", floor_spec, tmp)
                row.real_ms.append(real["ms"])
                row.real_import_ms.append(real["import_ms"])
                row.floor_ms.append(floor["ms"])
                row.floor_import_ms.append(floor["import_ms"])
            results.append(row)
    return results


if __name__ == "__main__":
    # python -m bench.coldstart_run [RUNS] [--profile DIR]
    args = sys.argv[1:]
    profile_dir = Path(args[args.index("--profile") + 1]) if "--profile" in args else None
    count = int(args[0]) if args and args[0].isdigit() else 3
    for row in measure(count, profile_dir):
        print(
            f"{row.function:50s} {row.real:7.0f} ms vs {row.floor:7.0f} ms  {row.ratio:4.2f}x  "
            f"(imports {statistics.median(row.real_import_ms):.0f} vs {statistics.median(row.floor_import_ms):.0f}; "
            f"{row.requests} AWS requests, {row.posts} posts)"
        )
        print("    clients built:", row.clients)
        print("   ", sorted((row.imports or {}).items(), key=lambda kv: -kv[1])[:8])
