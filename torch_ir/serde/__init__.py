"""The file format: versioned JSON documents of a module, their reader, writer and upgraders."""

from torch_ir.serde.json_format import (
    dumps_ir,
    ir_from_dict,
    ir_to_dict,
    load_ir,
    loads_ir,
    save_ir,
)

module_to_dict = ir_to_dict
save = save_ir
load = load_ir

__all__ = ["dumps_ir", "ir_from_dict", "ir_to_dict", "load", "load_ir", "loads_ir", "module_to_dict", "save", "save_ir"]
