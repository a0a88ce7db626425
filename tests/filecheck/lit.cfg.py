# lit configuration of torch-ir's FileCheck tests: each .tir file under this folder is a test whose
# `// RUN:` lines run `torch-ir opt` and pipe its output into `filecheck`, which matches the file's
# `// CHECK:` lines (as MLIR and xDSL test their passes). Run with `lit -v tests/filecheck` (or `make test`).
#
# A pass author's own repository can copy this file as it is: the tools come from the Python environment
# that runs lit (its bin folder goes first on PATH), and the folder that holds the plugin packages
# (`--plugin my_pkg.passes`) is put on PYTHONPATH, after the caller's own PYTHONPATH. `lit --param
# plugins_root=DIR` names another such folder; `--param exec_root=DIR` puts lit's temporary files (%t)
# there instead of next to the tests.
# ruff: noqa: F821  (lit defines `config` and `lit_config` when it runs this file)

import os
import sys

import lit.formats

config.name = "torch-ir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".tir"]
config.excludes = ["Inputs"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))
config.test_exec_root = lit_config.params.get("exec_root") or os.path.join(config.test_source_root, "Output")

root = lit_config.params.get("plugins_root") or os.path.dirname(os.path.dirname(config.test_source_root))
bin_dir = os.path.dirname(sys.executable)
config.environment["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
config.environment["PYTHONPATH"] = os.pathsep.join(p for p in [os.environ.get("PYTHONPATH", ""), root] if p)
for name in ("HOME", "TMPDIR", "TORCH_IR_MAX_LOOP_ITERATIONS"):
    if name in os.environ:
        config.environment[name] = os.environ[name]
