"""Example plugin passes, each usable as ``torch-ir opt IN.json -p NAME --plugin examples.passes.MODULE``.

- ``gqa_attention``: ``fuse-gqa-attention``, Llama repeat_kv + SDPA into one custom op.
- ``fold_batchnorm``: ``fold-batchnorm``, eval-mode batch norm folded into the conv before it (init graph).
- ``linear_activation``: ``fuse-linear-act``, linear + relu/gelu/silu into one custom op.
- ``decompose_sdpa``: ``decompose-sdpa``, SDPA as matmul, softmax, matmul for backends without attention.
"""
