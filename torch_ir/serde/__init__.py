"""The file format: a module as a versioned JSON document, described once (``torch_ir.serde.schema``).

``save`` / ``load`` (and ``dumps`` / ``loads``, ``to_dict`` / ``from_dict``) write and read documents of
the current version; ``load`` reads every older version through ``torch_ir.serde.upgraders``. Nothing here
imports torch, and reading never executes anything a file says.
"""

from torch_ir.serde.json_schema import json_schema, load_schema, schema_path
from torch_ir.serde.reader import from_dict, load, load_document, loads, loads_document
from torch_ir.serde.schema import FORMAT_NAME, SCHEMA_VERSION
from torch_ir.serde.writer import dumps, save, to_dict

__all__ = [
    "FORMAT_NAME",
    "SCHEMA_VERSION",
    "dumps",
    "from_dict",
    "json_schema",
    "load",
    "load_document",
    "load_schema",
    "loads",
    "loads_document",
    "save",
    "schema_path",
    "to_dict",
]
