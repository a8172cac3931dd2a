"""The kvcomp Python client: numpy arrays in, frames and reports out, and back."""

import itertools
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Union

import grpc
import numpy as np

from kvcomp import shm as _shm
from kvcomp.llama_state import Q4_0_BLOCK, Q8_0_BLOCK, LlamaState, decode_side_record
from kvcomp.engine import apply_engine_verdict
from kvcomp.llama_state import encode_side_record, read_varint, write_atomic
from kvcomp.v1 import kvcomp_pb2 as pb
from kvcomp.v1 import kvcomp_pb2_grpc as pb_grpc

_NAME = re.compile(r"^layer(\d+)_([kv])$")
_FRAME_MAGIC = b"KVCF"
_FRAME_PREFIX = struct.Struct("<4sBQ")  # magic, version, total length

_DTYPES = {np.dtype("<f4"): "FP32", np.dtype("<f2"): "FP16", Q8_0_BLOCK: "Q8_0",
           Q4_0_BLOCK: "Q4_0"}
# frame dtype id -> element size (docs/FORMAT.md); Q8_0 and Q4_0 elements are blocks
_FRAME_ELEMENT_BYTES = {1: 4, 2: 2, 3: 2, 4: 34, 5: 18}
# The default chunk: a server holds about two chunks of a stream, so 32 MiB chunks keep it
# under ~90 MiB for any cache (the C++ client's default too).
_DEFAULT_CHUNK = 32 << 20
_PER_TENSOR_OVERHEAD = 512  # a tensor's metadata in a message, counted generously
_NUMPY = {"FP32": np.dtype("<f4"), "FP16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
          "Q8_0": Q8_0_BLOCK, "Q4_0": Q4_0_BLOCK}


class KVCompError(Exception):
    """A call failed; ``code`` is the grpc.StatusCode, ``details`` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass
class CompressResult:
    # name -> the tensor's compressed form: one self-describing frame, or for a tensor sent in
    # token blocks (above the stream threshold) its blocks' frames back to back in token order.
    frames: Dict[str, bytes]
    reports: List[pb.TensorReport]
    totals: pb.Totals
    by_name: Dict[str, pb.TensorReport] = field(default_factory=dict)


def _place(name: str):
    m = _NAME.match(name)
    if not m:
        return -1, pb.TENSOR_KIND_UNSPECIFIED
    return int(m.group(1)), pb.TENSOR_KIND_K if m.group(2) == "k" else pb.TENSOR_KIND_V


def _to_tensor(name: str, array: np.ndarray, bf16: bool, token_major: bool,
               shm_ref: Optional[pb.SharedMemoryRef] = None) -> pb.Tensor:
    """The wire tensor: its bytes copied in, or, with shm_ref, named in a region (no copy)."""
    array = np.asarray(array)
    if bf16:
        if array.dtype not in (np.dtype("<u2"), np.dtype(">u2"), np.dtype("<i2")):
            raise ValueError(f"{name}: BF16 tensors travel as uint16 views, got {array.dtype}")
        datatype = "BF16"
        wire = np.dtype("<u2")
    elif array.dtype in (Q8_0_BLOCK, Q4_0_BLOCK):  # llama.cpp's quantised blocks
        datatype = _DTYPES[array.dtype]
        wire = array.dtype
    else:
        datatype = _DTYPES.get(array.dtype.newbyteorder("<"))
        if datatype is None:
            raise ValueError(f"{name}: dtype {array.dtype} is not float32 or float16 "
                             "(pass BF16 as a uint16 view with bf16=True)")
        wire = array.dtype.newbyteorder("<")
    layer, kind = _place(name)
    t = pb.Tensor(
        name=name, layer=layer, kind=kind, datatype=datatype, shape=list(array.shape),
        layout=pb.TENSOR_LAYOUT_TOKEN_MAJOR if token_major else pb.TENSOR_LAYOUT_HEAD_MAJOR)
    if shm_ref is not None:
        if array.dtype.byteorder == ">" or array.dtype.itemsize != wire.itemsize:
            raise ValueError(f"{name}: an array in shared memory must already be little-endian "
                             f"{wire} (it is {array.dtype})")
        t.shm.CopyFrom(shm_ref)
    else:
        t.raw_contents = np.ascontiguousarray(array.astype(wire, copy=False)).tobytes()
    return t


def _from_tensor(t: pb.Tensor) -> np.ndarray:
    return np.frombuffer(t.raw_contents, dtype=_NUMPY[t.datatype]).reshape(tuple(t.shape))


def _thresholds(cos=None, mae=None, rel_mae=None, max_abs=None) -> pb.ErrorThresholds:
    t = pb.ErrorThresholds()
    for name, value in (("cosine", cos), ("mae", mae), ("rel_mae", rel_mae), ("max_abs", max_abs)):
        if value is not None:
            getattr(t, name).value = float(value)
    return t


def _token_axis(ndim: int, token_major: bool) -> int:
    return 0 if ndim <= 1 or token_major else ndim - 2


def _pack(pieces, budget):
    """Consecutive (cost, item) pieces grouped into chunks whose cost stays within budget."""
    chunks, used = [], 0
    for cost, item in pieces:
        if not chunks or used + cost > budget:
            chunks.append([])
            used = 0
        used += cost
        chunks[-1].append(item)
    return chunks


def _frame_raw_bytes(frame: bytes) -> int:
    """The decoded size a frame header states (0 when the header cannot be read)."""
    try:
        pos = _FRAME_PREFIX.size
        dtype = frame[pos]
        _, pos = read_varint(frame, pos + 3)  # layout, kind, then the layer
        rank = frame[pos]
        pos += 1
        n = 1
        for _ in range(rank):
            d, pos = read_varint(frame, pos)
            n *= d
        return n * _FRAME_ELEMENT_BYTES.get(dtype, 0)
    except IndexError:
        return 0


def _merge_reports(blocks: List[pb.TensorReport], shape) -> pb.TensorReport:
    """The reports of a tensor's token blocks as one: sizes and seconds summed, mae and rmse
    over the tensor, max_abs the largest; rel_mae, rel_rmse, cosine, snr_db the worst block's."""
    out = pb.TensorReport()
    out.CopyFrom(blocks[0])
    del out.shape[:]
    out.shape.extend(shape)
    out.raw_bytes = sum(b.raw_bytes for b in blocks)
    out.compressed_bytes = sum(b.compressed_bytes for b in blocks)
    out.ratio = out.raw_bytes / out.compressed_bytes if out.compressed_bytes else 0.0
    out.compress_seconds = sum(b.compress_seconds for b in blocks)
    out.lossless = all(b.lossless for b in blocks)
    codecs = []
    for b in blocks:
        if b.codec not in codecs:
            codecs.append(b.codec)
    out.codec = ", ".join(codecs)
    out.ClearField("error")
    if not out.lossless:
        lossy = [b for b in blocks if b.HasField("error")]
        w = [b.raw_bytes / out.raw_bytes if out.raw_bytes else 0.0 for b in lossy]
        e = out.error
        e.mae = sum(wi * b.error.mae for wi, b in zip(w, lossy))
        e.rmse = math.sqrt(sum(wi * b.error.rmse ** 2 for wi, b in zip(w, lossy)))
        e.max_abs = max((b.error.max_abs for b in lossy), default=0.0)
        e.rel_mae = max((b.error.rel_mae for b in lossy), default=0.0)
        e.rel_rmse = max((b.error.rel_rmse for b in lossy), default=0.0)
        e.cosine = min((b.error.cosine for b in lossy), default=1.0)
        e.snr_db = min((b.error.snr_db for b in lossy), default=math.inf)
    return out


class Client:
    """A connection to one kvcomp server. Calls raise KVCompError on failure.

    compress and decompress make one unary call while the request fits under
    ``stream_threshold_bytes`` (default: min(max_message_bytes, 32 MiB) less 1/16, at most
    64 KiB); above it they stream (CompressStream/DecompressStream)
    in chunks within it, a bigger tensor cut along its token axis into token blocks. A stream
    is one call: ``timeout`` covers all of it."""

    def __init__(self, target: str, timeout: Optional[float] = 60.0,
                 max_message_bytes: int = 1 << 30, stream_threshold_bytes: int = 0,
                 shm_socket: Optional[str] = None):
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        self._target = target
        self._channel = grpc.insecure_channel(target, options=options)
        self._stub = pb_grpc.KVCompressorStub(self._channel)
        self._timeout = timeout
        if not 0 <= stream_threshold_bytes <= max_message_bytes:
            raise ValueError("stream_threshold_bytes must be in [0, max_message_bytes]")
        room = lambda m: min(m // 16, 64 << 10)
        limited = min(max_message_bytes, _DEFAULT_CHUNK)
        self.stream_threshold_bytes = stream_threshold_bytes or limited - room(limited)
        self._hard_limit = max_message_bytes - room(max_message_bytes)
        self._shm_socket = shm_socket
        self._shm_session = None
        self._regions = {}

    def close(self):
        for region in list(self._regions.values()):
            region.close()
        if self._shm_session is not None:
            self._shm_session.close()
        self._channel.close()

    # ---- shared memory (same host; kvcomp/shm.py) ----

    def shared_memory(self, name: str, size: int) -> "_shm.SharedMemory":
        """A region of ``size`` bytes shared with the server, registered under ``name``. numpy
        arrays made in it (``.ndarray``, ``.put``) are compressed by reference, with no copy;
        pass it as ``out=`` to have frames or tensors written into it. Needs ``shm_socket``."""
        if self._shm_socket is None:
            raise ValueError("shared memory needs Client(..., shm_socket=PATH), the server's "
                             "--shm-socket")
        if name in self._regions:
            raise ValueError(f"a region named {name!r} is open already")
        if self._shm_session is None:
            self._shm_session = _shm.Session(self._shm_socket)
        region = _shm.SharedMemory(self, name, size)
        self._regions[name] = region
        return region

    def regions(self) -> Dict[str, pb.SystemSharedMemoryStatusResponse.RegionStatus]:
        """This client's regions as the server has them registered."""
        return dict(self._call(self._stub.SystemSharedMemoryStatus,
                               pb.SystemSharedMemoryStatusRequest()).regions)

    def _register(self, name: str, fd: int, size: int):
        key = self._shm_session.pass_fd(fd)
        self._call(self._stub.SystemSharedMemoryRegister,
                   pb.SystemSharedMemoryRegisterRequest(name=name, key=key, byte_size=size))

    def _unregister(self, name: str):
        self._regions.pop(name, None)
        self._call(self._stub.SystemSharedMemoryUnregister,
                   pb.SystemSharedMemoryUnregisterRequest(name=name))

    def _locate(self, buffer) -> Optional[pb.SharedMemoryRef]:
        """The region range a buffer lives in, if it lives in one of this client's regions."""
        for region in self._regions.values():
            where = region.locate(buffer)
            if where is not None:
                return pb.SharedMemoryRef(region=region.name, offset=where[0], byte_size=where[1])
        return None

    @staticmethod
    def _output_to(out, request):
        """Sets request.output from ``out=`` (a region, or (region, offset, size)): the region
        the outputs land in, or None."""
        if out is None:
            return None
        region, offset, size = (out, 0, out.size) if isinstance(out, _shm.SharedMemory) else out
        request.output.CopyFrom(
            pb.SharedMemoryRef(region=region.name, offset=offset, byte_size=size))
        return region

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request):
        metadata = ((_shm.SESSION_METADATA, self._shm_session.token),) if self._shm_session else ()
        try:
            return method(request, timeout=self._timeout, metadata=metadata)
        except grpc.RpcError as e:  # the server's status code and message, unchanged
            raise KVCompError(e.code(), e.details()) from None

    def _exchange(self, unary, stream, chunks, make):
        """The answers to `chunks`, each made into a request by `make`: one unary call for a
        single chunk, else one stream (each chunk answered before the next is read)."""
        if len(chunks) <= 1:
            return [self._call(unary, make(chunks[0] if chunks else []))]
        try:
            return list(stream((make(c) for c in chunks), timeout=self._timeout))
        except grpc.RpcError as e:
            raise KVCompError(e.code(), e.details()) from None

    def compress(self, arrays: Mapping[str, np.ndarray], codec: str = "zstd(3)",
                 bf16: Union[bool, Iterable[str]] = False,
                 token_major: bool = False, out=None, block_tokens: int = 0) -> CompressResult:
        """Compresses named arrays; names like layer3_k / layer3_v set layer and kind.

        Arrays that live in one of this client's shared-memory regions travel by reference (no
        copy); with ``out`` (a region, or (region, offset, size)) the frames are written there
        and ``frames`` holds memoryviews of them. Either way it is one unary call.
        ``block_tokens`` > 0 cuts tensors of more tokens into token blocks of that many, each
        its own frame, so that one big tensor is spread over the server's workers."""
        bf16_names = set(arrays) if bf16 is True else set(bf16 or ())
        refs = {name: self._locate(np.asarray(a)) for name, a in arrays.items()} \
            if self._regions else {}
        if out is not None or block_tokens or any(refs.values()):
            return self._compress_one_call(arrays, codec, bf16_names, token_major, refs, out,
                                           block_tokens)
        threshold, pieces, shapes = self.stream_threshold_bytes, [], {}
        for name, array in arrays.items():
            array = np.asarray(array)
            shapes[name] = list(array.shape)
            cost = array.nbytes + _PER_TENSOR_OVERHEAD
            axis = _token_axis(array.ndim, token_major)
            if cost <= threshold or array.ndim == 0 or array.shape[axis] == 0:
                pieces.append((cost, (name, array, None)))
                continue
            tokens = array.shape[axis]
            token_bytes = array.nbytes // tokens
            per = max((threshold - _PER_TENSOR_OVERHEAD) // token_bytes, 0)
            if per == 0 and token_bytes + _PER_TENSOR_OVERHEAD <= self._hard_limit:
                per = 1
            if per == 0:
                raise KVCompError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  f"one token of {name} is {token_bytes} bytes, above the "
                                  f"client's limit of {self._hard_limit} bytes")
            for offset in range(0, tokens, per):
                count = min(per, tokens - offset)
                block = array[(slice(None),) * axis + (slice(offset, offset + count),)]
                pieces.append((block.nbytes + _PER_TENSOR_OVERHEAD,
                               (name, block, (offset, tokens))))
        chunks = _pack(pieces, threshold)

        def make(chunk):
            tensors = []
            for name, array, place in chunk:
                t = _to_tensor(name, array, name in bf16_names, token_major)
                if place:
                    t.token_offset, t.total_tokens = place
                tensors.append(t)
            return pb.CompressRequest(codec=codec, tensors=tensors)

        answers = self._exchange(self._stub.Compress, self._stub.CompressStream, chunks, make)
        frames, blocks = {}, {}
        totals = pb.Totals()
        for chunk, resp in zip(chunks or [[]], answers):
            if len(resp.tensors) != len(chunk):
                raise KVCompError(grpc.StatusCode.DATA_LOSS,
                                  f"server returned {len(resp.tensors)} tensors for {len(chunk)}")
            for (name, _, _), t in zip(chunk, resp.tensors):
                frames[name] = frames.get(name, b"") + t.frame
                blocks.setdefault(name, []).append(t.report)
            totals.raw_bytes += resp.totals.raw_bytes
            totals.compressed_bytes += resp.totals.compressed_bytes
        totals.ratio = totals.raw_bytes / totals.compressed_bytes if totals.compressed_bytes else 0
        reports = [b[0] if len(b) == 1 else _merge_reports(b, shapes[n]) for n, b in blocks.items()]
        return CompressResult(frames, reports, totals, dict(zip(blocks, reports)))

    def _compress_one_call(self, arrays, codec, bf16_names, token_major, refs, out, block_tokens):
        tensors = [_to_tensor(n, a, n in bf16_names, token_major, refs.get(n))
                   for n, a in arrays.items()]
        request = pb.CompressRequest(codec=codec, tensors=tensors, block_tokens=block_tokens)
        region = self._output_to(out, request)
        resp = self._call(self._stub.Compress, request)
        frames = {}
        for name, t in zip(arrays, resp.tensors):
            frames[name] = region.view(t.shm.offset, t.shm.byte_size) if region else t.frame
        reports = list(resp.tensors[i].report for i in range(len(resp.tensors)))
        return CompressResult(frames, reports, resp.totals, dict(zip(arrays, reports)))

    def decompress(self, frames: Union[Mapping[str, bytes], Iterable[bytes]],
                   out=None) -> Dict[str, np.ndarray]:
        """Decodes tensors back to arrays (BF16 as uint16): each item one frame, or a tensor's
        token blocks' frames back to back. Unnamed ones get their layer{L}_{k,v} name from the
        frame header.

        Frames that live in one of this client's shared-memory regions (e.g. ``frames`` of a
        compress with ``out=``) travel by reference; with ``out`` (a region, or (region,
        offset, size)) the tensors are decoded there and come back as arrays viewing it."""
        items = list(frames.items() if isinstance(frames, Mapping) else (("", f) for f in frames))
        refs = [self._locate(f) for _, f in items] if self._regions else []
        if out is not None or any(refs):
            return self._decompress_one_call(items, refs, out)
        pieces = []
        for index, (name, data) in enumerate(items):
            try:
                parts = split_frames(data) or [data]
            except ValueError:  # the server names what is wrong with it
                parts = [data]
            for part in parts:
                cost = max(len(part), _frame_raw_bytes(part)) + _PER_TENSOR_OVERHEAD
                if cost > self._hard_limit:
                    raise KVCompError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                      f"a frame of tensor {index} ({name!r}) decodes to more "
                                      f"than the client's limit of {self._hard_limit} bytes")
                pieces.append((cost, (index, name, part)))
        chunks = _pack(pieces, self.stream_threshold_bytes)

        def make(chunk):
            return pb.DecompressRequest(
                tensors=[pb.CompressedTensor(name=n, frame=f) for _, n, f in chunk])

        answers = self._exchange(self._stub.Decompress, self._stub.DecompressStream, chunks, make)
        decoded = {}
        for chunk, resp in zip(chunks or [[]], answers):
            if len(resp.tensors) != len(chunk):
                raise KVCompError(grpc.StatusCode.DATA_LOSS,
                                  f"server returned {len(resp.tensors)} tensors for {len(chunk)}")
            for (index, _, _), t in zip(chunk, resp.tensors):
                decoded.setdefault(index, []).append(t)
        out = {}
        for index in sorted(decoded):
            ts = decoded[index]
            t = ts[0]
            name = t.name or (f"layer{t.layer}_{'k' if t.kind == pb.TENSOR_KIND_K else 'v'}"
                              if t.layer >= 0 else f"tensor{len(out)}")
            arrays = [_from_tensor(b) for b in ts]
            axis = _token_axis(len(t.shape), t.layout == pb.TENSOR_LAYOUT_TOKEN_MAJOR)
            out[name] = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=axis)
        return out

    def _decompress_one_call(self, items, refs, out):
        entries = []
        for (name, data), ref in zip(items, refs or [None] * len(items)):
            entry = pb.CompressedTensor(name=name)
            if ref is not None:
                entry.shm.CopyFrom(ref)
            else:
                entry.frame = bytes(data)
            entries.append(entry)
        request = pb.DecompressRequest(tensors=entries)
        region = self._output_to(out, request)
        resp = self._call(self._stub.Decompress, request)
        result = {}
        for t in resp.tensors:
            name = t.name or (f"layer{t.layer}_{'k' if t.kind == pb.TENSOR_KIND_K else 'v'}"
                              if t.layer >= 0 else f"tensor{len(result)}")
            result[name] = (region.ndarray(tuple(t.shape), _NUMPY[t.datatype], t.shm.offset)
                            if region else _from_tensor(t))
        return result

    def list_codecs(self) -> list:
        """The server's codec catalogue: a CodecInfo per stage, preset and policy its specs may
        name (kind, name, stage id, summary, exactness, usage, params)."""
        return list(self._call(self._stub.ListCodecs, pb.ListCodecsRequest()).codecs)

    def analyze(self, arrays: Mapping[str, np.ndarray], codecs: Iterable[str] = (),
                sweeps: Iterable[str] = (), k_cos=None, v_cos=None, k_mae=None, v_mae=None,
                k_max_abs=None, v_max_abs=None, budget_bytes: Optional[int] = None,
                max_tokens: int = 0, max_layers: int = 0,
                bf16: Union[bool, Iterable[str]] = False, token_major: bool = False,
                engine_model: Optional[str] = None, engine_state: Optional[str] = None,
                min_agreement: Optional[float] = None, engine_candidates: int = 6,
                engine_tokens: int = 64, engine_hook=None,
                engine_cli: Optional[str] = None) -> pb.AnalyzeResponse:
        """Runs sweeps and/or explicit codecs over the cache and recommends the best one
        that meets the thresholds (and budget). Returns the AnalyzeResponse message.

        With engine_model (a GGUF) and engine_state (the llama.cpp state file the arrays came
        from), the best configurations are also judged by the model (kvcomp.engine): each one's
        CodecAnalysis.engine holds its token agreement and KL, and min_agreement makes agreement
        a threshold of the recommendation. engine_hook: the judging program's words (default
        $KVCOMP_ENGINE_HOOK, e.g. "node <repo>/engine/judge.mjs"); engine_cli: the kvcomp CLI it
        round-trips the state with."""
        if (engine_model is None) != (engine_state is None):
            raise ValueError("engine_model and engine_state go together")
        if min_agreement is not None and engine_model is None:
            raise ValueError("min_agreement needs engine_model")
        bf16_names = set(arrays) if bf16 is True else set(bf16 or ())
        req = pb.AnalyzeRequest(
            codecs=list(codecs), sweeps=list(sweeps),
            tensors=[_to_tensor(n, a, n in bf16_names, token_major) for n, a in arrays.items()],
            k_thresholds=_thresholds(cos=k_cos, mae=k_mae, max_abs=k_max_abs),
            v_thresholds=_thresholds(cos=v_cos, mae=v_mae, max_abs=v_max_abs),
            max_tokens=max_tokens, max_layers=max_layers)
        if budget_bytes is not None:
            req.budget_bytes.value = int(budget_bytes)
        response = self._call(self._stub.Analyze, req)
        if engine_model is not None:
            bounds = any(v is not None for v in (k_cos, v_cos, k_mae, v_mae, k_max_abs, v_max_abs))
            apply_engine_verdict(response, state=engine_state, model=engine_model,
                                 server=self._target, hook=engine_hook, cli=engine_cli,
                                 candidates=engine_candidates, tokens=engine_tokens,
                                 min_agreement=min_agreement, error_bounds_given=bounds,
                                 budget_bytes=budget_bytes)
        return response


def split_frames(data: bytes) -> List[bytes]:
    """Splits concatenated frames (a .kvc file) using each frame's own length field; a leading
    side record (a .kvc made from a llama.cpp state, see read_kvc) is checked and skipped."""
    _, pos = decode_side_record(data)
    frames = []
    while pos < len(data):
        if len(data) - pos < _FRAME_PREFIX.size:
            raise ValueError(f"truncated frame header at byte {pos}")
        magic, _, length = _FRAME_PREFIX.unpack_from(data, pos)
        if magic != _FRAME_MAGIC or length < _FRAME_PREFIX.size or pos + length > len(data):
            raise ValueError(f"not a complete kvcomp frame at byte {pos}")
        frames.append(bytes(data[pos:pos + length]))
        pos += length
    return frames


def save_kvc(path: str, frames: Iterable[bytes],
             llama_state: Union[None, bytes, LlamaState] = None) -> None:
    """Writes frames to a .kvc file atomically (temp file, fsync, rename). With `llama_state`
    (a LlamaState or its skeleton), the file starts with the side record that lets
    decompression write the state file back (docs/FORMAT.md, "Side records")."""
    head = []
    if llama_state is not None:
        skeleton = llama_state.skeleton if isinstance(llama_state, LlamaState) else llama_state
        head.append(encode_side_record(skeleton))
    write_atomic(path, itertools.chain(head, frames))


def load_kvc(path: str) -> List[bytes]:
    with open(path, "rb") as f:
        return split_frames(f.read())


@dataclass
class KvcFile:
    frames: List[bytes]
    llama_skeleton: Optional[bytes]  # set when the .kvc was made from a llama.cpp state


def read_kvc(path: str) -> KvcFile:
    """A .kvc file's frames and, when it was made from a llama.cpp state, that state's skeleton
    (save_llama_state(path, kvc.llama_skeleton, client.decompress(kvc.frames)) writes it back)."""
    with open(path, "rb") as f:
        data = f.read()
    skeleton, _ = decode_side_record(data)
    return KvcFile(split_frames(data), skeleton)
