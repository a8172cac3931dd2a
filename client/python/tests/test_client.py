"""The Python client against the real kvcomp-server binary on loopback.

Run by ctest with PYTHONPATH set to the generated package and KVCOMP_SERVER_BIN, and
KVCOMP_SHARED_KV pointing at the real dumps. Uses only /usr/bin/python3's Debian packages.
"""

import os
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

import grpc
import numpy as np

import kvcomp
from kvcomp.v1 import kvcomp_pb2 as pb

SHARED_KV = os.environ.get("KVCOMP_SHARED_KV", "")


class Server:
    """Starts kvcomp-server on 127.0.0.1 port 0 and stops that PID with SIGTERM."""

    def __init__(self, *flags):
        self.dir = tempfile.TemporaryDirectory()
        ready = os.path.join(self.dir.name, "ready")
        self.proc = subprocess.Popen(
            [os.environ["KVCOMP_SERVER_BIN"], "--listen", "127.0.0.1:0", "--metrics",
             "127.0.0.1:0", "--ready-file", ready, "--log-level", "warn", *flags])
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("kvcomp-server did not start")
            time.sleep(0.02)
        with open(ready) as f:
            lines = dict(line.strip().split("=", 1) for line in f if "=" in line)
        self.address = lines["grpc"]
        self.metrics = lines["metrics"]

    def handled(self, method, code="OK"):
        """grpc_server_handled_total for `method` and `code`, from the server's /metrics."""
        page = urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=10).read()
        total = 0.0
        for line in page.decode().splitlines():
            if (line.startswith("grpc_server_handled_total{") and f'grpc_method="{method}"' in line
                    and f'grpc_code="{code}"' in line):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.dir.cleanup()
        return code


def shared_npz(run, dtype):
    with np.load(os.path.join(SHARED_KV, f"{run}.{dtype}.npz")) as z:
        return {name: z[name] for name in z.files if name.startswith("layer")}


class ServerTestCase(unittest.TestCase):
    """One real server and a client for the test class."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.client = kvcomp.Client(cls.server.address, timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        assert cls.server.stop() == 0, "server did not exit cleanly on SIGTERM"


class ClientTest(ServerTestCase):

    @unittest.skipUnless(os.path.isdir(SHARED_KV), "../shared/kv is absent")
    def test_numpy_npz_round_trips_bit_exact(self):
        for run in ("story_prose", "mmlu_fewshot_q1"):
            for dtype in ("fp16", "fp32"):
                arrays = shared_npz(run, dtype)
                out = self.client.compress(arrays, codec="zstd(3)")
                self.assertEqual(set(out.frames), set(arrays))
                self.assertGreater(out.totals.ratio, 1.0)
                report = out.by_name["layer2_v"]
                self.assertEqual(report.layer, 2)
                self.assertEqual(report.kind, pb.TENSOR_KIND_V)
                self.assertEqual(report.compressed_bytes, len(out.frames["layer2_v"]))
                back = self.client.decompress(out.frames)
                for name, array in arrays.items():
                    self.assertEqual(back[name].dtype, array.dtype)
                    self.assertEqual(back[name].tobytes(), array.tobytes(), name)

    def test_bf16_travels_as_uint16(self):
        rng = np.random.default_rng(1)
        f32 = rng.normal(size=(2, 33, 8)).astype(np.float32)
        bf16 = (f32.view(np.uint32) >> 16).astype(np.uint16)
        out = self.client.compress({"layer0_k": bf16}, codec="zstd(1)", bf16=True)
        self.assertEqual(out.reports[0].datatype, "BF16")
        back = self.client.decompress(out.frames)
        self.assertEqual(back["layer0_k"].dtype, np.uint16)
        np.testing.assert_array_equal(back["layer0_k"], bf16)

    def test_lossy_reports_its_error(self):
        rng = np.random.default_rng(2)
        a = rng.normal(size=(4, 64, 8)).astype(np.float16)
        out = self.client.compress({"layer1_k": a}, codec="bounded(cos=0.999)")
        r = out.reports[0]
        self.assertFalse(r.lossless)
        self.assertGreaterEqual(r.error.cosine, 0.999)
        back = self.client.decompress(out.frames)["layer1_k"].astype(np.float64)
        x = a.astype(np.float64)
        cos = (x * back).sum() / np.sqrt((x * x).sum() * (back * back).sum())
        self.assertAlmostEqual(cos, r.error.cosine, places=9)

    def test_kvc_files_round_trip(self):
        a = np.arange(96, dtype=np.float16).reshape(2, 6, 8)
        out = self.client.compress({"layer0_k": a, "layer0_v": a + 1})
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "cache.kvc")
            kvcomp.save_kvc(path, out.frames.values())
            frames = kvcomp.load_kvc(path)
        back = self.client.decompress(frames)  # names come from the frame headers
        np.testing.assert_array_equal(back["layer0_k"], a)
        np.testing.assert_array_equal(back["layer0_v"], a + 1)
        with self.assertRaises(ValueError):
            kvcomp.split_frames(b"".join(out.frames.values())[:-1])

    @unittest.skipUnless(os.path.isdir(SHARED_KV), "../shared/kv is absent")
    def test_list_codecs_names_every_kind_with_its_schema(self):
        codecs = {c.name: c for c in self.client.list_codecs()}
        self.assertEqual(codecs["zstd"].kind, "stage")
        self.assertEqual(codecs["zstd"].id, 1)
        self.assertEqual([p.name for p in codecs["zstd"].params], ["level"])
        self.assertEqual(codecs["lossless"].exactness, "lossless")
        self.assertEqual(codecs["mixed"].kind, "policy")
        # Every listed stage usage is a spec the server compresses with.
        x = np.linspace(-1, 1, 2 * 16 * 8, dtype=np.float16).reshape(2, 16, 8)
        for c in codecs.values():
            if c.kind == "stage" and c.name not in ("protect", "qsplit"):
                self.client.compress({"layer0_k": x}, c.usage)

    def test_analyze_recommends_a_spec_compress_accepts(self):
        arrays = shared_npz("technical_prose", "fp16")
        resp = self.client.analyze(arrays, sweeps=["lossless", "bounded"], k_cos=0.9999,
                                   v_cos=0.9999)
        rec = resp.recommendation
        self.assertTrue(rec.found, rec.why)
        out = self.client.compress(arrays, codec=rec.codec)
        self.assertAlmostEqual(out.totals.ratio, rec.ratio, places=9)
        for r in out.reports:
            if not r.lossless:
                self.assertGreaterEqual(r.error.cosine, 0.9999)

    def test_bad_input_gets_clear_errors_and_the_server_keeps_serving(self):
        a = np.zeros((2, 4, 8), dtype=np.float16)
        with self.assertRaises(kvcomp.KVCompError) as e:
            self.client.compress({"layer0_k": a}, codec="nosuch(1)")
        self.assertEqual(e.exception.code.name, "INVALID_ARGUMENT")
        self.assertIn("nosuch", e.exception.details)
        with self.assertRaises(kvcomp.KVCompError) as e:
            self.client.decompress({"x": b"KVCF" + b"\x01" * 40})
        self.assertIn(e.exception.code.name, ("DATA_LOSS", "INVALID_ARGUMENT"))
        with self.assertRaises(ValueError):
            self.client.compress({"layer0_k": np.zeros((2, 2), dtype=np.int32)})
        out = self.client.compress({"layer0_k": a})
        np.testing.assert_array_equal(self.client.decompress(out.frames)["layer0_k"], a)


if __name__ == "__main__":
    unittest.main()


class StreamTest(unittest.TestCase):
    """4 MiB tensors against 1 MiB message limits on both sides: compress and decompress
    stream them in token blocks, bit-exact, and the server's /metrics show the streams."""

    def test_tensor_above_the_message_limit_streams_bit_exact(self):
        server = Server("--max-message-bytes", str(1 << 20))
        try:
            with kvcomp.Client(server.address, max_message_bytes=1 << 20) as client:
                rng = np.random.default_rng(7)
                arrays = {"layer0_k": rng.standard_normal((8, 2048, 128)).astype(np.float16),
                          "layer0_v": rng.standard_normal((8, 2048, 128)).astype(np.float16),
                          "layer1_k": rng.standard_normal((2, 16, 8)).astype(np.float32)}
                out = client.compress(arrays, codec="zstd(3)")
                self.assertEqual(len(kvcomp.split_frames(out.frames["layer0_k"])), 5)
                self.assertEqual(len(kvcomp.split_frames(out.frames["layer1_k"])), 1)
                report = out.by_name["layer0_v"]
                self.assertEqual(list(report.shape), [8, 2048, 128])
                self.assertEqual(report.raw_bytes, arrays["layer0_v"].nbytes)
                self.assertEqual(report.compressed_bytes, len(out.frames["layer0_v"]))
                self.assertEqual(out.totals.raw_bytes, sum(a.nbytes for a in arrays.values()))
                back = client.decompress(out.frames)
                for name, array in arrays.items():
                    self.assertEqual(back[name].shape, array.shape, name)
                    self.assertEqual(back[name].tobytes(), array.tobytes(), name)
                # Token-major and lossy: blocks along axis 0, errors merged per tensor.
                tm = {"layer2_v": rng.standard_normal((2048, 8, 128)).astype(np.float16)}
                lossy = client.compress(tm, codec="quant(8)+zstd(3)", token_major=True)
                err = lossy.by_name["layer2_v"].error
                self.assertFalse(lossy.by_name["layer2_v"].lossless)
                self.assertGreater(err.mae, 0)
                self.assertGreater(err.cosine, 0.99)
                self.assertEqual(client.decompress(lossy.frames)["layer2_v"].shape, (2048, 8, 128))
                # One token above the limit cannot go.
                with self.assertRaises(kvcomp.KVCompError) as wide:
                    client.compress({"x": np.zeros((1, 2, 300000), np.float32)})
                self.assertEqual(wide.exception.code, grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertEqual(server.handled("CompressStream"), 2)
            self.assertEqual(server.handled("DecompressStream"), 2)
            self.assertEqual(server.handled("Compress"), 0)
        finally:
            self.assertEqual(server.stop(), 0)
