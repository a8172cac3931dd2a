"""kvcomp: compress LLM KV caches through a kvcomp server, from numpy.

    import numpy as np, kvcomp
    with kvcomp.Client("127.0.0.1:50051") as c:
        out = c.compress({"layer0_k": k0, "layer0_v": v0}, codec="zstd(3)")
        print(out.totals.ratio, out.reports[0].codec)
        back = c.decompress(out.frames)          # {"layer0_k": ndarray, ...}

Arrays are FP32 or FP16 numpy arrays of shape [heads, tokens, head_dim]. numpy has no
bfloat16, so BF16 tensors travel as uint16 views: pass them with ``bf16=True`` (or a set of
names), and they come back as uint16 arrays. llama.cpp's quantised caches travel as arrays of
blocks (Q8_0_BLOCK, Q4_0_BLOCK), compressed losslessly only.

llama.cpp sequence-state files: load_llama_state / save_llama_state, and save_kvc(...,
llama_state=...) / read_kvc to keep a state's other bytes in the .kvc (kvcomp.llama_state).
"""

from kvcomp.shm import SharedMemory  # noqa: F401
from kvcomp.client import (  # noqa: F401
    Client,
    CompressResult,
    KvcFile,
    KVCompError,
    load_kvc,
    read_kvc,
    save_kvc,
    split_frames,
)
from kvcomp.llama_state import (  # noqa: F401
    Q4_0_BLOCK,
    Q8_0_BLOCK,
    LlamaState,
    StateFormatError,
    load_llama_state,
    parse_llama_state,
    save_llama_state,
)

__all__ = ["Client", "CompressResult", "KvcFile", "KVCompError", "LlamaState", "Q4_0_BLOCK",
           "Q8_0_BLOCK", "SharedMemory", "StateFormatError", "load_kvc", "load_llama_state",
           "parse_llama_state", "read_kvc", "save_kvc", "save_llama_state", "split_frames"]
