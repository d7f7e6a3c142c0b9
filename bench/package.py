"""Size of the deployment package, built the way `make package` builds it (tools/package.py: `chalice package`
with the runtime-provided boto3/botocore removed), against the unslimmed zip and Lambda's limits."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_ZIP_LIMIT_MB = 50.0  # direct upload
LAMBDA_UNZIPPED_LIMIT_MB = 250.0


@dataclass(frozen=True)
class Package:
    zipped_mb: float
    unzipped_mb: float


def start(out: Path) -> subprocess.Popen[str]:
    """Build in the background (its size does not depend on the machine's load, so it may overlap timings that
    do not matter either: the request counts and the table fill)."""
    return subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "tools/package.py", "--stage", "dev", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(build: subprocess.Popen[str]) -> Package:
    stdout, stderr = build.communicate(timeout=300)
    if build.returncode != 0:
        raise RuntimeError(f"make package failed:\n{stderr[-3000:]}")
    found = re.search(r"\(([\d.]+) MB zipped, ([\d.]+) MB unzipped", stdout)
    assert found, stdout
    return Package(float(found.group(1)), float(found.group(2)))


def measure() -> Package:
    with tempfile.TemporaryDirectory() as tmp:
        return result(start(Path(tmp) / "out"))
