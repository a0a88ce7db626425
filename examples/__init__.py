"""Examples of using torch-ir; ``examples.passes`` holds plugin passes (``--plugin examples.passes.NAME``)."""
