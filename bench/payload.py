"""`python -m bench.payload`: what a payload template costs per delivery, against sending the seed's shape.

Both sides run the dispatcher's own `render_body` (template or none: document, evaluation, JSON bytes), on the
sample order and on a large one (50 lines). Figures are microseconds per delivery, the median of many runs of
many renders, in CPU time of this process (other work on a busy machine does not count); compiling a template is
paid once per container and template, shown apart.
"""

from __future__ import annotations

import statistics
import time
import timeit

from jmespath.parser import Parser

from chalicelib.domain.sample_order import sample_order
from chalicelib.integrators.payload import compile_template, render_body
from tools.demo_integrators import LOYALTY_TEMPLATE

EXAMPLE = "{ref: order.id, customer: user.name, lines: order.items[].{sku: id, qty: quantity}}"
NUMBER = 1000
REPEAT = 11


def _micros(statement: object) -> float:
    timeit.timeit(statement, number=NUMBER)  # type: ignore[arg-type]  # warm up: the first runs of a case are slower
    runs = timeit.repeat(statement, number=NUMBER, repeat=REPEAT, timer=time.process_time)  # type: ignore[arg-type]
    return statistics.median(runs) / NUMBER * 1e6


def _compile_micros(template: str) -> float:
    def cold() -> None:
        Parser.purge()  # jmespath keeps its own parse cache: empty it so every run really parses
        compile_template.cache_clear()
        compile_template(template)

    runs = timeit.repeat(cold, number=200, repeat=REPEAT, timer=time.process_time)
    return statistics.median(runs) / 200 * 1e6


def main() -> None:
    small = sample_order()
    large = sample_order()
    large.details["items"] = [{"id": f"i-{n}", "name": f"Item {n}", "quantity": n % 5 + 1} for n in range(50)]
    print(f"Payload rendering per delivery (document, template, JSON bytes): CPU time, median of {REPEAT} x {NUMBER}")
    for label, order in (("sample order, 1 line", small), ("large order, 50 lines", large)):
        baseline = _micros(lambda order=order: render_body(order, "order.created", None))
        print(f"  {label}")
        print(f"    {'baseline: the seed shape, no template':<48} {baseline:8.1f} us   1.00x")
        for name, template in (("contract example template", EXAMPLE), ("demo loyalty template", LOYALTY_TEMPLATE)):
            cost = _micros(lambda order=order, template=template: render_body(order, "order.created", template))
            print(f"    {name:<48} {cost:8.1f} us   {cost / baseline:4.2f}x   (+{cost - baseline:.1f} us)")
    print("  compiling a template, once per container and template text")
    for name, template in (("contract example template", EXAMPLE), ("demo loyalty template", LOYALTY_TEMPLATE)):
        print(f"    {name:<48} {_compile_micros(template):8.1f} us")


if __name__ == "__main__":
    main()
