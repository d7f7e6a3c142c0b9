"""Cold start per function, as Lambda pays it: a fresh interpreter imports `app` and serves its first event against
a running moto server, against a floor that makes the same AWS calls (replayed from a recorded run) with bare boto3
in a fresh interpreter. Runs alternate function / floor, so drift on the machine hits both alike.

Child side: `python -m bench.coldstart <real|record|floor|profile> <spec.json>` prints one JSON line; only the
standard library is imported before the clock starts. `profile` serves like `real` under cProfile and writes the
stats beside the spec (`<spec>.prof`): where a function's first event spends its time, imports included.
"""

from __future__ import annotations

import json
import os
import sys
import time

STARTED = time.perf_counter()

FUNCTIONS = ("api: first POST /orders", "authorizer: first token", "dispatcher: first batch", "callback: first one")


class _Context:
    """The parts of Lambda's context object the service reads."""

    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _serve(spec: dict[str, object]) -> float:
    """Import the app and serve the spec's event; returns the import time in ms."""
    before = time.perf_counter()
    import app

    imported = (time.perf_counter() - before) * 1000
    handler = app.app if spec["handler"] == "api" else app.app.handler_map[str(spec["handler"])]
    result = handler(spec["event"], _Context())
    expect = spec.get("expect")
    if expect == "allow":
        assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow", result
    elif expect is not None:
        assert result["statusCode"] == expect, result
    return imported


def _floor(spec: dict[str, object]) -> float:
    """Bare boto3: one session, one client per service, the recorded calls in order; then the same HTTP posts."""
    before = time.perf_counter()
    import boto3
    from botocore.exceptions import ClientError

    imported = (time.perf_counter() - before) * 1000
    session = boto3.session.Session()
    clients: dict[str, object] = {}
    for service, operation, params in spec["calls"]:  # type: ignore[attr-defined]
        if service not in clients:
            clients[service] = session.client(service)
        from botocore import xform_name

        try:
            getattr(clients[service], xform_name(operation))(**params)
        except ClientError:
            pass  # a replayed conditional write may now fail its condition: the same request all the same
    if spec.get("posts"):
        import urllib.request

        for url in spec["posts"]:  # type: ignore[attr-defined]
            request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=5).read()  # noqa: S310 - loopback fake integrator
    return imported


def child(mode: str, path: str) -> None:
    with open(path) as handle:
        spec = json.load(handle)
    os.environ.update(spec.get("env", {}))
    log = None
    if mode == "record":
        from bench.aws_requests import recording

        with recording() as log:
            imported = _serve(spec)
    elif mode == "real":
        imported = _serve(spec)
    elif mode == "profile":
        import cProfile

        profiler = cProfile.Profile()
        imported = profiler.runcall(_serve, spec)
        profiler.dump_stats(path + ".prof")
    else:
        imported = _floor(spec)
    total = (time.perf_counter() - STARTED) * 1000
    out: dict[str, object] = {"ms": total, "import_ms": imported}
    if log is not None:
        out["calls"] = log.calls
        out["requests"] = log.total
        out["clients"] = log.clients
    sys.stdout.write("\n" + json.dumps(out, default=str) + "\n")


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2])


# --- parent side -----------------------------------------------------------------------------------------------


def rest_event(method: str, resource: str, path: str, body: str, headers: dict[str, str], **extra: object) -> dict:  # type: ignore[type-arg]
    """An API Gateway REST proxy event as Lambda receives it."""
    params = extra.get("path_params")
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "apiId": "bench",
            "requestId": f"req-{time.monotonic_ns()}",
            "identity": {"sourceIp": "127.0.0.1"},
            "authorizer": extra.get("authorizer"),
        },
        "body": body,
        "isBase64Encoded": False,
    }
