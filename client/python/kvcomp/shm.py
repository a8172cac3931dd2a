"""Shared memory with a kvcomp server on the same host (kvcomp-server --shm-socket).

A region is a memfd sealed against shrinking and growing (the server maps nothing else: a file
that can shrink under its mapping could fault it), mapped here with mmap and passed to the
server over its shared-memory socket. numpy arrays made in a region (``SharedMemory.ndarray``,
``SharedMemory.put``) are compressed by reference: only the region's name, an offset and a size
travel over gRPC. Outputs can land in a region too, as views into it.
"""

import fcntl
import mmap
import os
import socket
from typing import Optional, Tuple

import numpy as np

SESSION_METADATA = "kvcomp-shm-session"
ALIGNMENT = 64  # where the server places each output, and where put() places arrays


def address_of(buffer) -> int:
    """The address of a buffer's first byte (an ndarray, a memoryview, an mmap, bytes)."""
    if not isinstance(buffer, np.ndarray):
        buffer = np.frombuffer(buffer, dtype=np.uint8)
    return buffer.__array_interface__["data"][0]


class Session:
    """A connection to the server's shared-memory socket: the client's identity for its regions.
    The server releases every region registered through it once it closes."""

    def __init__(self, path: str):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._sock.connect(path)
            hello = self._receive()
        except BaseException:
            self._sock.close()
            raise
        prefix = "KVCOMP-SHM 1 "
        if not hello.startswith(prefix):
            self._sock.close()
            raise ConnectionError(f"{path} is not a kvcomp shared-memory socket")
        self.token = hello[len(prefix):]

    def _receive(self) -> str:
        answer = self._sock.recv(512).decode().rstrip("\n")
        if not answer:
            raise ConnectionError("the server closed the shared-memory socket")
        if answer.startswith("ERR "):
            raise ConnectionError(answer[4:])
        return answer

    def pass_fd(self, fd: int) -> str:
        """Passes fd to the server: the key to register it under."""
        socket.send_fds(self._sock, [b"FD"], [fd])
        answer = self._receive()
        if not answer.startswith("OK "):
            raise ConnectionError(f"unexpected answer {answer!r}")
        return answer[3:]

    def close(self):
        self._sock.close()


class SharedMemory:
    """A region shared with the server, registered under ``name``. Make it with
    ``Client.shared_memory(name, size)``; ``close()`` (or leaving a ``with`` block) unregisters
    and unmaps it. Arrays made in it stay valid only while it is open."""

    def __init__(self, client, name: str, size: int):
        if size <= 0:
            raise ValueError("a shared-memory region needs bytes")
        self.name = name
        self.size = size
        self._client = client
        fd = os.memfd_create(f"kvcomp:{name}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, size)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
            self._mmap = mmap.mmap(fd, size)
            client._register(name, fd, size)
        finally:
            os.close(fd)  # the mapping (here and in the server) keeps the memory
        self.base = address_of(self._mmap)
        self._next = 0

    def ndarray(self, shape, dtype, offset: int = 0) -> np.ndarray:
        """An array living in the region at byte ``offset``: no copy, ever."""
        return np.ndarray(shape, dtype=dtype, buffer=self._mmap, offset=offset)

    def put(self, array: np.ndarray) -> np.ndarray:
        """Copies ``array`` into the region's next free bytes (64-aligned): the copy, in place."""
        array = np.ascontiguousarray(array)
        offset = -(-self._next // ALIGNMENT) * ALIGNMENT
        if offset + array.nbytes > self.size:
            raise ValueError(f"region {self.name!r} has {self.size - offset} bytes left, "
                             f"{array.nbytes} needed")
        out = self.ndarray(array.shape, array.dtype, offset)
        out[...] = array
        self._next = offset + array.nbytes
        return out

    def view(self, offset: int, size: int) -> memoryview:
        """Bytes [offset, offset + size) of the region (e.g. a frame the server wrote)."""
        return memoryview(self._mmap)[offset:offset + size]

    def locate(self, buffer) -> Optional[Tuple[int, int]]:
        """(offset, size) of a C-contiguous buffer that lies inside this region, else None."""
        if isinstance(buffer, np.ndarray) and not buffer.flags["C_CONTIGUOUS"]:
            return None
        size = buffer.nbytes if hasattr(buffer, "nbytes") else len(buffer)
        start = address_of(buffer) - self.base
        return (start, size) if 0 <= start and start + size <= self.size else None

    def close(self):
        if self._mmap is None:
            return
        self._client._unregister(self.name)
        try:
            self._mmap.close()
        except BufferError:
            pass  # arrays made in the region still use it: it is unmapped when they go
        self._mmap = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
