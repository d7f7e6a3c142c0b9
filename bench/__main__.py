"""`make bench`: every figure of issue 14 beside a baseline measured in the same run, and the partition heat of
issue 22; prints a table and writes docs/benchmarks.md.

    make bench                         # everything, about 4 minutes on 2 cores
    BENCH_RUNS=5 BENCH_QUICK=1 make bench   # a quicker look: 5 cold starts, 3,000 orders instead of 50,000
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _quiet() -> contextlib.AbstractContextManager[object]:
    """The service's EMF metrics lines go to stdout (as in Lambda); keep them out of the table."""
    return contextlib.redirect_stdout(io.StringIO())


def main() -> None:
    from bench import coldstart_run, fanout, heat, heat_run, life, package, report, scaling, tracking

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    runs = int(os.environ.get("BENCH_RUNS", "15"))
    timings: dict[str, float] = {}

    def timed(name: str, run: object) -> object:
        began = time.perf_counter()
        print(f"... {name}", flush=True)
        with _quiet():
            result = run()  # type: ignore[operator]
        timings[name] = time.perf_counter() - began
        return result

    with tempfile.TemporaryDirectory() as tmp:
        build = package.start(Path(tmp) / "package")  # overlaps the counts and the fill: only its size is used
        lives = timed("AWS requests of one order's life", life.measure)
        scales = timed("scaling: 1,000 and 50,000 orders", scaling.measure)
        size = timed("deployment package (built meanwhile)", lambda: package.result(build))
    fan = timed("fan-out and in-process POST /orders", fanout.measure)
    heats = timed(f"partition heat: {heat.ORDERS} orders walked to delivered", heat_run.measure)
    colds = timed(f"cold starts, {runs} runs per function", lambda: coldstart_run.measure(runs))
    watched = timed("live tracking: requests and dollars per change per watcher", tracking.measure)
    data = report.Results(
        lives,  # type: ignore[arg-type]
        scales,  # type: ignore[arg-type]
        fan,  # type: ignore[arg-type]
        size,  # type: ignore[arg-type]
        colds,  # type: ignore[arg-type]
        runs,
        timings,
        (load_before, os.getloadavg()[0]),
        heats,  # type: ignore[arg-type]
    )
    print()
    print(report.console(data))
    path = ROOT / "docs" / "benchmarks.md"
    path.parent.mkdir(exist_ok=True)
    kept = path.read_text() if path.exists() else None
    path.write_text(report.keep_hand_written(kept, report.document(data, time.perf_counter() - started)))
    print("\nLive tracking, per customer-facing change (docs/live-tracking.md):")
    print(tracking.table(watched))  # type: ignore[arg-type]
    tracking.write(watched)  # type: ignore[arg-type]
    phases = ", ".join(f"{name} {value:.0f} s" for name, value in timings.items())
    print(f"\nwrote {path.relative_to(ROOT)} (bench took {time.perf_counter() - started:.0f} s: {phases})")


if __name__ == "__main__":
    main()
