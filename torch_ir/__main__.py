"""``python -m torch_ir``: the ``torch-ir`` command line."""

from __future__ import annotations

import sys

from torch_ir.cli import main

sys.exit(main())
