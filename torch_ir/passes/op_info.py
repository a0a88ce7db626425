"""Moved to ``torch_ir.analysis.op_info``; this name keeps old imports working (it is that module)."""

import sys

from torch_ir.analysis.op_info import __name__ as _moved_name

sys.modules[__name__] = sys.modules[_moved_name]
