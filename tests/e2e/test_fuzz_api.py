"""schemathesis, a fuzzer no one here wrote, against the served OpenAPI document of the local stack: every
operation, stateful links on, as an admin and as a seller. No 5xx, and every answer as the document says."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.stack_process import local_stack

pytestmark = pytest.mark.e2e
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "ignored_auth",
    )
)
SECONDS = 90  # both roles at once: ~2,000 requests on an idle 2-core machine, over 1,000 under load


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with local_stack(tmp_path_factory.mktemp("fuzz-stack")) as info:
        yield info


def start(stack: dict[str, Any], token: str, workdir: Path) -> subprocess.Popen[str]:
    command = [
        SCHEMATHESIS,
        "run",
        f"{stack['api_url']}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-time",
        str(SECONDS),
        "--workers",
        "4",
        "--seed",
        "11",
        "--report",
        "json,har",
        "--report-dir",
        str(workdir),
    ]
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(run: subprocess.Popen[str], workdir: Path) -> dict[str, Any]:
    """The run's JSON summary plus every request it made (from its HAR report)."""
    output, _ = run.communicate(timeout=SECONDS + 120)
    (summary,) = workdir.glob("json-*.json")
    (har,) = workdir.glob("har-*.json")
    entries = json.loads(har.read_text())["log"]["entries"]
    return {
        "exit_code": run.returncode,
        "output": output[-8000:],
        "summary": json.loads(summary.read_text()),
        "statuses": Counter(int(entry["response"]["status"]) for entry in entries),
    }


def test_fuzzing_every_operation_finds_no_server_error_and_no_answer_outside_the_document(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    started = {}
    for role in ("admin", "seller"):
        (tmp_path / role).mkdir()
        started[role] = start(stack, stack[f"{role}_token"], tmp_path / role)
    runs = {role: finish(run, tmp_path / role) for role, run in started.items()}
    requests = sum(sum(run["statuses"].values()) for run in runs.values())
    server_errors = sum(n for run in runs.values() for code, n in run["statuses"].items() if code >= 500)
    print(
        f"\nfuzzed {requests} requests, {server_errors} answered 5xx:",
        {r: dict(v["statuses"]) for r, v in runs.items()},
    )
    for role, run in runs.items():
        assert run["summary"]["failures"] == [], f"{role}:\n{run['output']}"
        assert run["exit_code"] == 0, f"{role}:\n{run['output']}"
    assert server_errors == 0
    assert requests >= 1000
