"""`make bench`: speed figures, each printed as a ratio against a baseline measured in the same run.

1. Cold start: fresh interpreters importing `app` (what every Lambda cold start pays) against `import boto3`.
2. Dispatch: one batch of 10 orders to 3 integrators that each answer in 200 ms, against the sequential sum.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7


def _import_ms(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
    samples = []
    for _ in range(RUNS):
        output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        samples.append(float(output.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def cold_start() -> None:
    baseline = _import_ms("import boto3")
    rows = [
        ("import app (API, authorizer, every function)", _import_ms("import app")),
        ("import app + orders service (API request path)", _import_ms("import app; import chalicelib.orders.service")),
        ("import app + dispatcher (SQS function)", _import_ms("import app; import chalicelib.dispatch.batch")),
        ("import app + callbacks", _import_ms("import app; import chalicelib.callbacks")),
    ]
    print(f"\nCold-start imports, median of {RUNS} fresh interpreters")
    print(f"  {'baseline: import boto3':<52} {baseline:8.1f} ms   1.00x")
    for name, value in rows:
        print(f"  {name:<52} {value:8.1f} ms   {value / baseline:4.2f}x")


def dispatch() -> None:
    from bench.dispatch import measure

    runs = [measure(orders=10, integrators=3, delay=0.2) for _ in range(3)]
    instant = statistics.median(measure(orders=10, integrators=3, delay=0.0)[0] for _ in range(3))
    concurrent = statistics.median(run[0] for run in runs)
    sequential = statistics.median(run[1] for run in runs)
    print("\nDispatch: 10 orders x 3 integrators answering in 200 ms, one SQS batch (AWS = a moto server), median of 3")
    print(f"  {'baseline: the 30 deliveries one after another':<52} {sequential * 1000:8.1f} ms   1.00x")
    print(f"  {'dispatch_orders batch':<52} {concurrent * 1000:8.1f} ms   {concurrent / sequential:4.2f}x")
    print(
        f"  {'same batch, integrators answering at once':<52} {instant * 1000:8.1f} ms   {instant / sequential:4.2f}x"
    )
    print(
        f"  -> the integrators' 200 ms add {max(0.0, concurrent - instant) * 1000:.0f} ms to the batch, not "
        "30 x 200 ms: the deliveries run side by side; the rest is the emulated AWS calls"
    )


if __name__ == "__main__":
    started = time.perf_counter()
    cold_start()
    dispatch()
    print(f"\n(bench took {time.perf_counter() - started:.1f} s)")
