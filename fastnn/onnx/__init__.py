"""ONNX export: `fastnn.onnx.export(model, args, f, ...)` with torch.onnx.export's arguments.

The exporter traces one forward pass over fastnn's ops (fastnn/_tracing.py) and converts each op call with the
converter registered for it; converters live here by op family (ops_*.py). Users add their own with
`register_converter(op_name)`. The onnx package is imported only when exporting (`pip install 'fastnn[onnx]'`).
"""
from fastnn.onnx._registry import UnsupportedOperatorError, register_converter
from fastnn.onnx._export import export
from fastnn.onnx import (ops_activation, ops_conv, ops_elementwise, ops_norm, ops_pool,  # noqa: F401 (register)
                         ops_reduce, ops_resample, ops_shape)

__all__ = ["UnsupportedOperatorError", "export", "register_converter"]
