"""ONNX export: `fastnn.onnx.export(model, args, f, ...)` with torch.onnx.export's arguments.

The exporter traces one forward pass over fastnn's ops (fastnn/_tracing.py) and converts each op call with the
converter registered for it; converters live here by op family (ops_*.py). Users add their own with
`register_converter(op_name)`. The onnx package is imported only when exporting (`pip install 'fastnn[onnx]'`).
"""
import importlib

from fastnn.onnx._registry import UnsupportedOperatorError, register_converter
from fastnn.onnx._export import export

for _family in ("activation", "conv", "elementwise", "norm", "pool", "reduce", "resample", "shape"):
    importlib.import_module(f"fastnn.onnx.ops_{_family}")  # registers the family's converters

__all__ = ["UnsupportedOperatorError", "export", "register_converter"]
