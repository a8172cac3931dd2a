"""kvcomp: compress LLM KV caches through a kvcomp server, from numpy.

    import numpy as np, kvcomp
    with kvcomp.Client("127.0.0.1:50051") as c:
        out = c.compress({"layer0_k": k0, "layer0_v": v0}, codec="zstd(3)")
        print(out.totals.ratio, out.reports[0].codec)
        back = c.decompress(out.frames)          # {"layer0_k": ndarray, ...}

Arrays are FP32 or FP16 numpy arrays of shape [heads, tokens, head_dim]. numpy has no
bfloat16, so BF16 tensors travel as uint16 views: pass them with ``bf16=True`` (or a set of
names), and they come back as uint16 arrays.
"""

from kvcomp.client import (  # noqa: F401
    Client,
    CompressResult,
    KVCompError,
    load_kvc,
    save_kvc,
    split_frames,
)

__all__ = ["Client", "CompressResult", "KVCompError", "load_kvc", "save_kvc", "split_frames"]
