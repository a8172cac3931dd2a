"""What a call refused at --max-concurrent-calls costs the server: its peak RSS (VmHWM) before
and after one 200 MiB CompressRequest is refused, sent unary and as a stream, while an idle
CompressStream holds the only slot. Usage: /usr/bin/python3 refused_call_memory.py BUILD_DIR
(the server binary and the generated Python stubs come from BUILD_DIR). Loopback only."""
import os
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import numpy as np

BUILD = sys.argv[1]
sys.path.insert(0, os.path.join(BUILD, "client", "python"))
from kvcomp.v1 import kvcomp_pb2 as pb, kvcomp_pb2_grpc as pbg  # noqa: E402

MIB = 1 << 20


def peak_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return -1


def start(ready):
    proc = subprocess.Popen([
        os.path.join(BUILD, "server", "kvcomp-server"), "--listen", "127.0.0.1:0", "--metrics",
        "127.0.0.1:0", "--ready-file", ready, "--max-concurrent-calls", "1",
        "--max-message-bytes", str(512 * MIB), "--workers", "1", "--log-level", "warn"])
    while not os.path.exists(ready) or "grpc=" not in open(ready).read():
        time.sleep(0.05)
    time.sleep(0.2)
    with open(ready) as f:
        return proc, [l.split("=", 1)[1].strip() for l in f if l.startswith("grpc=")][0]


raw = np.random.default_rng(1).integers(0, 65535, size=100 * MIB, dtype=np.uint16).tobytes()
tensor = pb.Tensor(name="layer0_k", layer=0, kind=pb.TENSOR_KIND_K, datatype="FP16",
                   shape=[8, len(raw) // 2 // 8 // 128, 128], raw_contents=raw)
request = pb.CompressRequest(codec="zstd(1)", tensors=[tensor])
print(f"request: {request.ByteSize() / MIB:.1f} MiB")
for mode in ("unary", "stream"):
    with tempfile.TemporaryDirectory() as tmp:
        proc, address = start(os.path.join(tmp, "ready"))
        channel = grpc.insecure_channel(address, options=[
            ("grpc.max_send_message_length", 512 * MIB),
            ("grpc.max_receive_message_length", 512 * MIB)])
        stub = pbg.KVCompressorStub(channel)
        release = threading.Event()

        def idle():
            release.wait()
            return
            yield

        holder = stub.CompressStream(idle(), timeout=120)  # holds the only slot
        time.sleep(0.5)
        before = peak_mib(proc.pid)
        start_time = time.time()
        try:
            if mode == "unary":
                stub.Compress(request, timeout=60)
            else:
                list(stub.CompressStream(iter([request]), timeout=60))
            outcome = "OK"
        except grpc.RpcError as e:
            outcome = e.code().name
        seconds = time.time() - start_time
        time.sleep(0.5)
        after = peak_mib(proc.pid)
        print(f"{mode}: {outcome} in {seconds:.2f} s; server VmHWM {before:.0f} -> {after:.0f} MiB"
              f" (+{after - before:.0f})")
        release.set()
        channel.close()
        proc.terminate()
        proc.wait()
