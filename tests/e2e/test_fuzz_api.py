"""schemathesis, a fuzzer no one here wrote, against the served OpenAPI document of the local stack: every
operation, every phase (stateful links on), as an admin and as a seller. No 5xx, and every answer as the document
says.

`make test` fuzzes for rounds of SECONDS (about 1,700 requests a round on a 2-core machine; rounds repeat until
1,000 requests and every phase has run); `make soak` runs the same for rounds of SOAK_SECONDS, exploring further."""

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
SECONDS = 40  # per round, both roles at once; rounds repeat (new seeds) until 1,000 requests, at most 5
SOAK_SECONDS = 180
MIN_REQUESTS = 1000
PHASES = ("examples", "coverage", "fuzzing", "stateful")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with local_stack(tmp_path_factory.mktemp("fuzz-stack")) as info:
        yield info


def start(stack: dict[str, Any], token: str, workdir: Path, seed: int, seconds: int) -> subprocess.Popen[str]:
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
        str(seconds),
        "--workers",
        "4",
        "--seed",
        str(seed),
        "--report",
        "json,har",
        "--report-dir",
        str(workdir),
    ]
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(run: subprocess.Popen[str], workdir: Path, seconds: int) -> dict[str, Any]:
    """The run's JSON summary plus every request it made (from its HAR report)."""
    output, _ = run.communicate(timeout=seconds + 120)
    (summary,) = workdir.glob("json-*.json")
    (har,) = workdir.glob("har-*.json")
    entries = json.loads(har.read_text())["log"]["entries"]
    return {
        "exit_code": run.returncode,
        "output": output[-8000:],
        "summary": json.loads(summary.read_text()),
        "statuses": Counter(int(entry["response"]["status"]) for entry in entries),
    }


def phases_run(runs: list[dict[str, Any]], role: str) -> set[str]:
    """The phases that ran (were not skipped, e.g. for lack of time) in any round of `role`."""
    return {
        name
        for done in runs
        if done["role"] == role
        for name, phase in done["summary"]["phases"].items()
        if phase["status"] != "skip"
    }


def fuzz(stack: dict[str, Any], tmp_path: Path, seconds: int) -> None:
    runs: list[dict[str, Any]] = []
    for round_ in range(5):
        started = {}
        for role in ("admin", "seller"):
            workdir = tmp_path / f"{role}-{round_}"
            workdir.mkdir()
            started[role] = (start(stack, stack[f"{role}_token"], workdir, seed=11 + round_, seconds=seconds), workdir)
        for role, (process, workdir) in started.items():
            runs.append({"role": role, **finish(process, workdir, seconds)})
        enough = sum(sum(done["statuses"].values()) for done in runs) >= MIN_REQUESTS
        if enough and all(phases_run(runs, role) >= set(PHASES) for role in started):
            break
    statuses: Counter[int] = Counter()
    for done in runs:
        statuses.update(done["statuses"])
    requests = sum(statuses.values())
    print(f"\nfuzzed {requests} requests in {len(runs) // 2} round(s):", dict(sorted(statuses.items())))
    for done in runs:
        assert done["summary"]["failures"] == [], f"{done['role']}:\n{done['output']}"
        assert done["exit_code"] == 0, f"{done['role']}:\n{done['output']}"
    assert not [code for code in statuses if code >= 500]
    assert requests >= MIN_REQUESTS
    for role in ("admin", "seller"):
        assert phases_run(runs, role) >= set(PHASES), f"{role}: only {sorted(phases_run(runs, role))} ran"


def test_fuzzing_every_operation_finds_no_server_error_and_no_answer_outside_the_document(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    fuzz(stack, tmp_path, SECONDS)


@pytest.mark.soak
def test_fuzzing_longer_finds_no_server_error_and_no_answer_outside_the_document(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    fuzz(stack, tmp_path, SOAK_SECONDS)
