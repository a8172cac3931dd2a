"""The kvcomp Python client: numpy arrays in, frames and reports out, and back."""

import os
import re
import struct
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Union

import grpc
import numpy as np

from kvcomp.v1 import kvcomp_pb2 as pb
from kvcomp.v1 import kvcomp_pb2_grpc as pb_grpc

_NAME = re.compile(r"^layer(\d+)_([kv])$")
_FRAME_MAGIC = b"KVCF"
_FRAME_PREFIX = struct.Struct("<4sBQ")  # magic, version, total length

_DTYPES = {np.dtype("<f4"): "FP32", np.dtype("<f2"): "FP16"}
_NUMPY = {"FP32": np.dtype("<f4"), "FP16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


class KVCompError(Exception):
    """A call failed; ``code`` is the grpc.StatusCode, ``details`` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass
class CompressResult:
    frames: Dict[str, bytes]  # name -> self-describing frame
    reports: List[pb.TensorReport]
    totals: pb.Totals
    by_name: Dict[str, pb.TensorReport] = field(default_factory=dict)


def _place(name: str):
    m = _NAME.match(name)
    if not m:
        return -1, pb.TENSOR_KIND_UNSPECIFIED
    return int(m.group(1)), pb.TENSOR_KIND_K if m.group(2) == "k" else pb.TENSOR_KIND_V


def _to_tensor(name: str, array: np.ndarray, bf16: bool, token_major: bool) -> pb.Tensor:
    array = np.asarray(array)
    if bf16:
        if array.dtype not in (np.dtype("<u2"), np.dtype(">u2"), np.dtype("<i2")):
            raise ValueError(f"{name}: BF16 tensors travel as uint16 views, got {array.dtype}")
        datatype = "BF16"
        array = array.astype("<u2", copy=False)
    else:
        datatype = _DTYPES.get(array.dtype.newbyteorder("<"))
        if datatype is None:
            raise ValueError(f"{name}: dtype {array.dtype} is not float32 or float16 "
                             "(pass BF16 as a uint16 view with bf16=True)")
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    layer, kind = _place(name)
    return pb.Tensor(
        name=name, layer=layer, kind=kind, datatype=datatype, shape=list(array.shape),
        layout=pb.TENSOR_LAYOUT_TOKEN_MAJOR if token_major else pb.TENSOR_LAYOUT_HEAD_MAJOR,
        raw_contents=np.ascontiguousarray(array).tobytes())


def _from_tensor(t: pb.Tensor) -> np.ndarray:
    return np.frombuffer(t.raw_contents, dtype=_NUMPY[t.datatype]).reshape(tuple(t.shape))


def _thresholds(cos=None, mae=None, rel_mae=None, max_abs=None) -> pb.ErrorThresholds:
    t = pb.ErrorThresholds()
    for name, value in (("cosine", cos), ("mae", mae), ("rel_mae", rel_mae), ("max_abs", max_abs)):
        if value is not None:
            getattr(t, name).value = float(value)
    return t


class Client:
    """A connection to one kvcomp server. Calls raise KVCompError on failure."""

    def __init__(self, target: str, timeout: Optional[float] = 60.0,
                 max_message_bytes: int = 1 << 30):
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        self._channel = grpc.insecure_channel(target, options=options)
        self._stub = pb_grpc.KVCompressorStub(self._channel)
        self._timeout = timeout

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request):
        try:
            return method(request, timeout=self._timeout)
        except grpc.RpcError as e:  # the server's status code and message, unchanged
            raise KVCompError(e.code(), e.details()) from None

    def compress(self, arrays: Mapping[str, np.ndarray], codec: str = "zstd(3)",
                 bf16: Union[bool, Iterable[str]] = False,
                 token_major: bool = False) -> CompressResult:
        """Compresses named arrays; names like layer3_k / layer3_v set layer and kind."""
        bf16_names = set(arrays) if bf16 is True else set(bf16 or ())
        req = pb.CompressRequest(codec=codec, tensors=[
            _to_tensor(n, a, n in bf16_names, token_major) for n, a in arrays.items()])
        resp = self._call(self._stub.Compress, req)
        frames = {t.name: t.frame for t in resp.tensors}
        reports = [t.report for t in resp.tensors]
        return CompressResult(frames, reports, resp.totals, {r.name: r for r in reports})

    def decompress(self, frames: Union[Mapping[str, bytes], Iterable[bytes]]) -> Dict[str, np.ndarray]:
        """Decodes frames back to arrays (BF16 as uint16). Unnamed frames get their
        layer{L}_{k,v} name from the frame header."""
        items = frames.items() if isinstance(frames, Mapping) else (("", f) for f in frames)
        req = pb.DecompressRequest(tensors=[pb.CompressedTensor(name=n, frame=f) for n, f in items])
        resp = self._call(self._stub.Decompress, req)
        out = {}
        for t in resp.tensors:
            name = t.name or (f"layer{t.layer}_{'k' if t.kind == pb.TENSOR_KIND_K else 'v'}"
                              if t.layer >= 0 else f"tensor{len(out)}")
            out[name] = _from_tensor(t)
        return out

    def analyze(self, arrays: Mapping[str, np.ndarray], codecs: Iterable[str] = (),
                sweeps: Iterable[str] = (), k_cos=None, v_cos=None, k_mae=None, v_mae=None,
                k_max_abs=None, v_max_abs=None, budget_bytes: Optional[int] = None,
                max_tokens: int = 0, max_layers: int = 0,
                bf16: Union[bool, Iterable[str]] = False) -> pb.AnalyzeResponse:
        """Runs sweeps and/or explicit codecs over the cache and recommends the best one
        that meets the thresholds (and budget). Returns the AnalyzeResponse message."""
        bf16_names = set(arrays) if bf16 is True else set(bf16 or ())
        req = pb.AnalyzeRequest(
            codecs=list(codecs), sweeps=list(sweeps),
            tensors=[_to_tensor(n, a, n in bf16_names, False) for n, a in arrays.items()],
            k_thresholds=_thresholds(cos=k_cos, mae=k_mae, max_abs=k_max_abs),
            v_thresholds=_thresholds(cos=v_cos, mae=v_mae, max_abs=v_max_abs),
            max_tokens=max_tokens, max_layers=max_layers)
        if budget_bytes is not None:
            req.budget_bytes.value = int(budget_bytes)
        return self._call(self._stub.Analyze, req)


def split_frames(data: bytes) -> List[bytes]:
    """Splits concatenated frames (a .kvc file) using each frame's own length field."""
    frames, pos = [], 0
    while pos < len(data):
        if len(data) - pos < _FRAME_PREFIX.size:
            raise ValueError(f"truncated frame header at byte {pos}")
        magic, _, length = _FRAME_PREFIX.unpack_from(data, pos)
        if magic != _FRAME_MAGIC or length < _FRAME_PREFIX.size or pos + length > len(data):
            raise ValueError(f"not a complete kvcomp frame at byte {pos}")
        frames.append(bytes(data[pos:pos + length]))
        pos += length
    return frames


def save_kvc(path: str, frames: Iterable[bytes]) -> None:
    """Writes frames to a .kvc file atomically (temp file, fsync, rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kvc-")
    try:
        with os.fdopen(fd, "wb") as f:
            for frame in frames:
                f.write(frame)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_kvc(path: str) -> List[bytes]:
    with open(path, "rb") as f:
        return split_frames(f.read())
