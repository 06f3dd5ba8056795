"""fastnn/_tracing.py: @traced keeps an op's signature and behaviour, and a Tracer records only outermost calls."""
import inspect

import numpy as np
import pytest

import fastnn
from fastnn._tracing import Tracer, traced
from fastnn.ops import activation, elementwise, shape


@traced
def scaled(x, factor=2.0, *more, shift=0.0, **options):
    return x * factor + sum(more) + shift + sum(options.values())


def test_wrapper_keeps_signature_defaults_and_forwarding():
    assert str(inspect.signature(scaled)) == "(x, factor=2.0, *more, shift=0.0, **options)"
    assert scaled.__name__ == "scaled" and scaled.__wrapped__(1) == 2.0
    assert scaled(1) == 2.0
    assert scaled(1, 3, 10, 20, shift=1, a=100) == 134
    assert inspect.signature(elementwise.add) == inspect.signature(elementwise.add.__wrapped__)


def test_tracer_records_outermost_calls_with_named_arguments():
    x = fastnn.tensor(np.array([[-1.0, 2.0]], np.float32))
    with Tracer() as tracer:
        y = activation.gelu(x, approximate="tanh")
        z = scaled(3, 4, 5, shift=6, extra=7)
        w = shape.transpose(x, 0, 1)  # calls permute inside: not recorded
    assert [c.name for c in tracer.calls] == ["gelu", "scaled", "transpose"]
    assert tracer.calls[0].arguments == {"x": x, "approximate": "tanh"} and tracer.calls[0].result is y
    assert tracer.calls[1].arguments == {"x": 3, "factor": 4, "more": (5,), "shift": 6, "options": {"extra": 7}}
    assert tracer.calls[1].result == z == 30
    assert tracer.calls[2].result is w and w.shape == (2, 1)
    assert scaled(1) == 2.0  # no tracer afterwards: nothing recorded
    assert len(tracer.calls) == 3


def test_tracer_copies_list_arguments_and_refuses_nesting():
    parts = [fastnn.ones(1)]
    with Tracer() as tracer:
        shape.cat(parts, 0)
        parts.append(fastnn.ones(1))
        with pytest.raises(RuntimeError, match="already running"):
            Tracer().__enter__()
    assert len(tracer.calls[0].arguments["tensors"]) == 1
