"""Rendering payload templates (pure: no AWS, no HTTP)."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.sample_order import sample_order
from chalicelib.integrators.payload import PayloadTemplateError, check_template, compile_template, render_body

EXAMPLE = "{ref: order.id, customer: user.name, lines: order.items[].{sku: id, qty: quantity}}"


def test_without_a_template_the_body_is_the_seeds_shape_byte_for_byte() -> None:
    order = sample_order()
    seed = json.dumps(order.integrator_payload(), separators=(",", ":"), ensure_ascii=False).encode()
    assert render_body(order, "order.created", None) == seed


def test_the_contract_example_keeps_only_what_the_partner_needs() -> None:
    body = json.loads(render_body(sample_order(), "order.created", EXAMPLE))
    assert body == {"ref": "ord_SAMPLE", "customer": "Lina", "lines": [{"sku": "i-1", "qty": 2}]}


def test_a_template_is_compiled_once_and_reused() -> None:
    assert compile_template("{a: event}") is compile_template("{a: event}")
    assert json.loads(render_body(sample_order(), "order.updated", "{a: event}")) == {"a": "order.updated"}


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{a: to_number('1e999')}", "infinity"),
        ("order.items[0].quantity", "it yielded a number"),
        ("contains(order.items[].id, 'i-1')", "it yielded a boolean"),
    ],
)
def test_what_json_or_an_object_body_cannot_carry_is_a_template_error(template: str, reason: str) -> None:
    with pytest.raises(PayloadTemplateError, match=reason):
        check_template(template)
