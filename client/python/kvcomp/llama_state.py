"""llama.cpp sequence-state files (llama_state_seq_save_file: magic 'ggsq', version 3) as numpy
arrays plus the file's other bytes, and back; and the .kvc side record that carries those bytes.

The same reading as the C++ client's (client/io/llama_state.h, docs/FORMAT.md "Side records"):
each layer's K and V become a token-major array [cells, row elements] named layer{L}_k /
layer{L}_v (a transposed V, v_trans 1, is transposed back); everything else is the skeleton,
the file with the K/V values cut out, which is all save_llama_state needs to put them back.

    st = kvcomp.load_llama_state("prompt.state")
    out = client.compress(st.tensors, codec="lossless", bf16=st.bf16_names, token_major=True)
    kvcomp.save_kvc("prompt.kvc", out.frames.values(), llama_state=st)
    kvc = kvcomp.read_kvc("prompt.kvc")
    kvcomp.save_llama_state("restored.state", kvc.llama_skeleton, client.decompress(kvc.frames))

Arrays: F32 float32, F16 float16, BF16 uint16 (numpy has no bfloat16), Q8_0 and Q4_0 one
element per block of 32 values (Q8_0_BLOCK, Q4_0_BLOCK: the FP16 scale d and the quants).
"""

import os
import struct
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Union

import numpy as np
import xxhash
import zstandard

MAGIC = 0x67677371  # 'ggsq'
VERSION = 3

Q8_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "i1", (32,))])  # 34 bytes
Q4_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes

# ggml type -> (kvcomp datatype, numpy dtype of one element)
_GGML = {
    0: ("FP32", np.dtype("<f4")),
    1: ("FP16", np.dtype("<f2")),
    2: ("Q4_0", Q4_0_BLOCK),
    8: ("Q8_0", Q8_0_BLOCK),
    30: ("BF16", np.dtype("<u2")),
}
_GGML_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0",
               30: "BF16"}


class StateFormatError(ValueError):
    """Not a sequence state this reader handles; names the field and its byte offset."""


@dataclass
class LlamaState:
    tensors: Dict[str, np.ndarray]
    datatypes: Dict[str, str]  # name -> FP32 / FP16 / BF16 / Q8_0 / Q4_0
    skeleton: bytes
    tokens: np.ndarray  # int32
    positions: np.ndarray  # int32, one per cell
    seq_ids: List[List[int]]
    v_trans: int = 0
    n_layer: int = 0
    file_bytes: int = 0

    @property
    def bf16_names(self):
        """The names to pass as Client.compress(..., bf16=...)."""
        return {n for n, d in self.datatypes.items() if d == "BF16"}


@dataclass
class _Section:
    data: bool
    offset: int  # in the walked bytes
    size: int
    name: str = ""
    datatype: str = ""
    dtype: Optional[np.dtype] = None
    cells: int = 0
    row: int = 0
    transposed: bool = False


class _Walker:
    """Walks a state file, or its skeleton (has_data False: K/V values take no bytes)."""

    def __init__(self, data: bytes, has_data: bool, what: str):
        self.b, self.has_data, self.what = memoryview(data), has_data, what
        self.pos = self.cut = self.kept_from = 0
        self.sections: List[_Section] = []
        self.info = {"tokens": 0, "cells": 0, "v_trans": 0, "n_layer": 0}

    def bad(self, field_name, offset, detail):
        return StateFormatError(f"{self.what}: not a llama.cpp sequence state kvcomp can read: "
                                f"{field_name} at byte offset {offset} {detail}")

    def left(self):
        return len(self.b) - self.pos

    def file_pos(self):
        return self.pos + self.cut

    def read(self, fmt, field_name):
        n = struct.calcsize(fmt)
        if self.left() < n:
            raise self.bad(field_name, self.file_pos(),
                           f"needs {n} bytes, but the {'file' if self.has_data else 'skeleton'} "
                           f"ends {self.left()} bytes later (truncated)")
        (v,) = struct.unpack_from("<" + fmt, self.b, self.pos)
        self.pos += n
        return v

    def flush(self):
        if self.pos > self.kept_from:
            self.sections.append(_Section(False, self.kept_from, self.pos - self.kept_from))
        self.kept_from = self.pos

    def walk(self):
        magic = self.read("I", "magic")
        if magic != MAGIC:
            raise self.bad("magic", 0, f"is 0x{magic:08x}, not llama.cpp's sequence-state magic "
                                       f"0x{MAGIC:08x} ('ggsq')")
        version = self.read("I", "version")
        if version != VERSION:
            raise self.bad("version", 4, f"is {version}; kvcomp reads sequence-state version "
                                         f"{VERSION}")
        n_tokens = self.read("I", "n_token_count")
        if n_tokens > self.left() // 4:
            raise self.bad("n_token_count", 8, f"is {n_tokens}, but only {self.left()} bytes "
                                               "follow for its 4-byte tokens")
        self.info["tokens_at"] = self.pos
        self.info["tokens"] = n_tokens
        self.pos += 4 * n_tokens
        at = self.file_pos()
        n_stream = self.read("I", "n_stream")
        if n_stream == 0 or n_stream > self.left() // 4:
            raise self.bad("n_stream", at, f"is {n_stream}, with {self.left()} bytes left")
        seen = False
        for s in range(n_stream):
            at = self.file_pos()
            cells = self.read("I", "cell_count")
            if cells == 0:
                continue
            if seen:
                raise self.bad(f"cell_count of stream {s}", at, f"is {cells}: kvcomp reads "
                               "states whose cells are all in one stream")
            seen = True
            self.stream(cells)
        if self.left():
            raise self.bad("end of the cache", self.file_pos(),
                           f"{self.left()} bytes follow the last section (the state of a model "
                           "with a second cache, e.g. sliding-window or recurrent layers, which "
                           "kvcomp does not read)")
        self.flush()
        self.info["file_bytes"] = self.file_pos()
        return self

    def stream(self, cells):
        self.info["cells"] = cells
        if cells > self.left() // 8:
            raise self.bad("cell_count", self.file_pos() - 4,
                           f"is {cells}, but only {self.left()} bytes follow for cells of at "
                           "least 8 bytes")
        self.info["cells_at"] = self.pos
        for c in range(cells):
            self.read("i", "pos")
            at = self.file_pos()
            n_seq = self.read("I", "n_seq_id")
            if n_seq > 256 or n_seq > self.left() // 4:
                raise self.bad(f"n_seq_id of cell {c}", at,
                               f"is {n_seq} (at most 256; a model with per-cell extras, such as "
                               "M-RoPE's positions, writes fields kvcomp does not read)")
            self.pos += 4 * n_seq
        at = self.file_pos()
        v_trans = self.read("I", "v_trans")
        if v_trans > 1:
            raise self.bad("v_trans", at, f"is {v_trans}, not 0 or 1 (a model with per-cell "
                           "extras, such as M-RoPE's positions, writes fields kvcomp does not "
                           "read)")
        at = self.file_pos()
        n_layer = self.read("I", "n_layer")
        if n_layer == 0 or n_layer > self.left() // 12:
            raise self.bad("n_layer", at, f"is {n_layer}, with {self.left()} bytes left for "
                           "sections of at least 12 bytes each")
        self.info["v_trans"], self.info["n_layer"] = v_trans, n_layer
        for layer in range(n_layer):
            self.row_section("K", layer, cells)
        for layer in range(n_layer):
            if v_trans:
                self.transposed_section(layer, cells)
            else:
                self.row_section("V", layer, cells)

    def ggml_type(self, kind, layer):
        at = self.file_pos()
        name = f"{kind} type of layer {layer}"
        t = self.read("i", name)
        if t not in _GGML:
            raise self.bad(name, at, f"is {_GGML_NAMES.get(t, f'ggml type {t}')}, which kvcomp "
                                     "does not read (F32, F16, BF16, Q8_0, Q4_0)")
        return _GGML[t]

    def row_section(self, kind, layer, cells):
        datatype, dtype = self.ggml_type(kind, layer)
        at = self.file_pos()
        name = f"{kind} row size of layer {layer}"
        row_bytes = self.read("Q", name)
        if row_bytes == 0 or row_bytes % dtype.itemsize:
            raise self.bad(name, at, f"is {row_bytes} bytes, not a whole number of {datatype} "
                                     f"elements ({dtype.itemsize} bytes each)")
        self.data(name, at, kind, layer, datatype, dtype, cells, row_bytes // dtype.itemsize,
                  False)

    def transposed_section(self, layer, cells):
        datatype, dtype = self.ggml_type("V", layer)
        at = self.file_pos()
        name = f"V element size of layer {layer}"
        element = self.read("I", name)
        if datatype in ("Q8_0", "Q4_0"):
            raise self.bad(name, at, f"follows a {datatype} V with v_trans 1: llama.cpp keeps a "
                                     "quantised V untransposed (flash attention), so the file is "
                                     "inconsistent")
        if element != dtype.itemsize:
            raise self.bad(name, at, f"is {element}, but a {datatype} element is "
                                     f"{dtype.itemsize} bytes")
        at = self.file_pos()
        name = f"V n_embd_v_gqa of layer {layer}"
        n_embd = self.read("I", name)
        if n_embd == 0:
            raise self.bad(name, at, "is 0")
        self.data(name, at, "V", layer, datatype, dtype, cells, n_embd, True)

    def data(self, name, at, kind, layer, datatype, dtype, cells, row, transposed):
        size = cells * row * dtype.itemsize
        if self.has_data and size > self.left():
            raise self.bad(name, at, f"makes {cells} cells of {row * dtype.itemsize} bytes, more "
                                     f"than the {self.left()} bytes left (truncated?)")
        self.flush()
        self.sections.append(_Section(True, self.pos, size, f"layer{layer}_{kind.lower()}",
                                      datatype, dtype, cells, row, transposed))
        if self.has_data:
            self.pos += size
        else:
            self.cut += size
        self.kept_from = self.pos


def parse_llama_state(data: bytes, what: str = "state") -> LlamaState:
    """Reads a whole state file's bytes; StateFormatError names what is wrong and where."""
    w = _Walker(data, True, what).walk()
    tensors, datatypes, skeleton = {}, {}, bytearray()
    for s in w.sections:
        raw = data[s.offset:s.offset + s.size]
        if not s.data:
            skeleton += raw
            continue
        a = np.frombuffer(raw, dtype=s.dtype)
        a = a.reshape(s.row, s.cells).T.copy() if s.transposed else a.reshape(s.cells, s.row)
        tensors[s.name] = a
        datatypes[s.name] = s.datatype
    cells = w.info["cells"]
    positions, seq_ids = np.zeros(cells, dtype="<i4"), []
    if cells:
        pos = w.info["cells_at"]
        for c in range(cells):
            p, n = struct.unpack_from("<iI", data, pos)
            positions[c] = p
            seq_ids.append(list(struct.unpack_from(f"<{n}i", data, pos + 8)))
            pos += 8 + 4 * n
    tokens = np.frombuffer(data, dtype="<i4", count=w.info["tokens"], offset=12).copy()
    return LlamaState(tensors, datatypes, bytes(skeleton), tokens, positions, seq_ids,
                      w.info["v_trans"], w.info["n_layer"], len(data))


def load_llama_state(path: str) -> LlamaState:
    with open(path, "rb") as f:
        return parse_llama_state(f.read(), path)


def assemble_llama_state(skeleton: bytes, tensors: Mapping[str, np.ndarray]) -> bytes:
    """The state file a skeleton and its tensors make; ValueError when a tensor is missing, extra
    or not of the dtype and shape the state holds there."""
    w = _Walker(skeleton, False, "llama.cpp state skeleton").walk()
    out, used = bytearray(), set()
    for s in w.sections:
        if not s.data:
            out += skeleton[s.offset:s.offset + s.size]
            continue
        if s.name not in tensors:
            raise ValueError(f"the state needs {s.name} ({s.datatype} [{s.cells},{s.row}]), which "
                             "is not among the tensors")
        a = np.asarray(tensors[s.name])
        if a.dtype != s.dtype or a.shape != (s.cells, s.row):
            raise ValueError(f"tensor {s.name!r} is {a.dtype} {list(a.shape)}, but the state "
                             f"holds {s.datatype} [{s.cells},{s.row}] there (kvcomp writes "
                             "values back in the cache's own type and shape)")
        out += np.ascontiguousarray(a.T if s.transposed else a).tobytes()
        used.add(s.name)
    extra = set(tensors) - used
    if extra:
        raise ValueError(f"tensors {sorted(extra)} have no place in the state "
                         f"({w.info['n_layer']} layers of K and V)")
    return bytes(out)


def write_atomic(path: str, chunks: Iterable[bytes]) -> None:
    """Writes `path` from `chunks`: a temporary file beside it, fsync, rename; nothing is left
    behind on failure."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kvcomp-")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_llama_state(path: str, skeleton: Union[bytes, LlamaState],
                     tensors: Optional[Mapping[str, np.ndarray]] = None) -> None:
    """Writes the state file (atomically) from a skeleton (or a LlamaState) and the tensors
    (default: the LlamaState's own)."""
    if isinstance(skeleton, LlamaState):
        tensors = skeleton.tensors if tensors is None else tensors
        skeleton = skeleton.skeleton
    write_atomic(path, [assemble_llama_state(skeleton, tensors or {})])


# The .kvc side record (docs/FORMAT.md, "Side records").
_SIDE_MAGIC = b"KVCS"
_SIDE_HEAD = struct.Struct("<4sBQ")
_SOURCE_LLAMA_STATE = 1


def read_varint(data: bytes, pos: int):
    """A LEB128 varint at `pos`: (value, the position after it)."""
    value, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_side_record(skeleton: bytes) -> bytes:
    packed = zstandard.ZstdCompressor(level=19, write_content_size=True).compress(skeleton)
    zstd = len(packed) < len(skeleton)
    body = bytes([_SOURCE_LLAMA_STATE, 1 if zstd else 0]) + _encode_varint(len(skeleton)) + (
        packed if zstd else skeleton)
    length = _SIDE_HEAD.size + len(body) + 8
    record = _SIDE_HEAD.pack(_SIDE_MAGIC, 1, length) + body
    return record + struct.pack("<Q", xxhash.xxh3_64_intdigest(record))


def decode_side_record(data: bytes):
    """(skeleton or None, bytes the record takes); ValueError for a damaged record."""
    if data[:4] != _SIDE_MAGIC:
        return None, 0
    if len(data) < _SIDE_HEAD.size:
        raise ValueError("side record: truncated header")
    _, version, length = _SIDE_HEAD.unpack_from(data)
    if version != 1:
        raise ValueError(f"side record version {version} (this reader knows 1)")
    if length < _SIDE_HEAD.size + 11 or length > len(data):
        raise ValueError(f"side record: length {length} with {len(data)} bytes")
    (checksum,) = struct.unpack_from("<Q", data, length - 8)
    if xxhash.xxh3_64_intdigest(bytes(data[:length - 8])) != checksum:
        raise ValueError("side record: checksum mismatch")
    source, coding = data[13], data[14]
    if source != _SOURCE_LLAMA_STATE:
        raise ValueError(f"side record of source {source}, which this reader does not know")
    raw, pos = read_varint(data, 15)
    payload = bytes(data[pos:length - 8])
    if coding == 0:
        skeleton = payload
    elif coding == 1:
        skeleton = zstandard.ZstdDecompressor().decompress(payload, max_output_size=raw)
    else:
        raise ValueError(f"side record: coding {coding}")
    if len(skeleton) != raw:
        raise ValueError("side record: payload length")
    return skeleton, length
