"""Plain-NumPy references for fastnn/_kernels/cpu_elementwise.py: same names, arguments and results."""
import operator

from fastnn._kernels.cpu_elementwise import ADD, DIV, MUL, SUB

_OPERATORS = {ADD: operator.add, SUB: operator.sub, MUL: operator.mul, DIV: operator.truediv}


def binary(a, b, op):
    return _OPERATORS[op](a, b)


def accumulate(target, values):
    target += values
