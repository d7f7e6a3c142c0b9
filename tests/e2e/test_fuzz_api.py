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
SECONDS = 60  # per round, both roles at once; rounds repeat (new seeds) until 1,000 requests, at most 5
MIN_REQUESTS = 1000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with local_stack(tmp_path_factory.mktemp("fuzz-stack")) as info:
        yield info


def start(stack: dict[str, Any], token: str, workdir: Path, seed: int) -> subprocess.Popen[str]:
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
        str(seed),
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
    runs: list[dict[str, Any]] = []
    for round_ in range(5):
        started = {}
        for role in ("admin", "seller"):
            workdir = tmp_path / f"{role}-{round_}"
            workdir.mkdir()
            started[role] = (start(stack, stack[f"{role}_token"], workdir, seed=11 + round_), workdir)
        for role, (process, workdir) in started.items():
            runs.append({"role": role, **finish(process, workdir)})
        if sum(sum(done["statuses"].values()) for done in runs) >= MIN_REQUESTS:
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
