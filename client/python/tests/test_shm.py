"""The Python client's shared memory against the real kvcomp-server (--shm-socket): numpy arrays
that live in a region are compressed by reference, frames and tensors come back into regions as
views, and nothing tensor-sized crosses gRPC.

Run by ctest like test_client.py (PYTHONPATH, KVCOMP_SERVER_BIN).
"""

import os
import tempfile
import unittest

import numpy as np

import kvcomp
from test_client import Server


def llama_like(seed, heads=8, tokens=512, dim=128):
    """Smooth FP16 values with a few outlier channels: compressible like a real K."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 0.05, (heads, tokens, dim)), axis=1)
    walk[:, :, :4] *= 8
    return walk.astype(np.float16)


class SharedMemoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.socket = os.path.join(cls.dir.name, "shm.sock")
        cls.server = Server("--shm-socket", cls.socket)

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, "server did not exit cleanly on SIGTERM"
        cls.dir.cleanup()

    def test_arrays_in_a_region_round_trip_bit_exact_into_regions(self):
        with kvcomp.Client(self.server.address, shm_socket=self.socket) as c:
            source = {f"layer{i // 2}_{'kv'[i % 2]}": llama_like(i) for i in range(4)}
            inputs = c.shared_memory("in", 8 << 20)
            frames_out = c.shared_memory("frames", 8 << 20)
            tensors_out = c.shared_memory("tensors", 8 << 20)
            arrays = {name: inputs.put(a) for name, a in source.items()}
            for a in arrays.values():  # in the region itself, not a copy of it
                self.assertIsNotNone(inputs.locate(a))
            out = c.compress(arrays, codec="lossless", out=frames_out)
            inline = c.compress(source, codec="lossless")
            for name in source:
                self.assertIsInstance(out.frames[name], memoryview)
                self.assertIsNotNone(frames_out.locate(out.frames[name]))
                self.assertEqual(bytes(out.frames[name]), inline.frames[name])
                self.assertEqual(out.by_name[name].compressed_bytes, len(out.frames[name]))
            back = c.decompress(out.frames, out=tensors_out)
            for name, a in source.items():
                self.assertTrue(np.array_equal(back[name], a), name)
                self.assertIsNotNone(tensors_out.locate(back[name]))
                self.assertTrue(np.shares_memory(back[name], tensors_out.ndarray(
                    (tensors_out.size,), np.uint8)))
            regions = c.regions()
            self.assertEqual(sorted(regions), ["frames", "in", "tensors"])
            self.assertEqual(regions["in"].byte_size, 8 << 20)
            del arrays, back, out
            for region in (inputs, frames_out, tensors_out):
                region.close()
            self.assertEqual(c.regions(), {})

    def test_a_tensor_bigger_than_a_message_goes_by_reference_in_one_call(self):
        before = self.server.handled("Compress")
        streams = self.server.handled("CompressStream")
        big = np.tile(llama_like(9, tokens=2048), (1, 4, 1))  # 32 MiB
        with kvcomp.Client(self.server.address, shm_socket=self.socket,
                           max_message_bytes=1 << 20) as c:
            with c.shared_memory("big", big.nbytes + 4096) as region, \
                    c.shared_memory("frames", big.nbytes + (1 << 20)) as frames:
                array = region.put(big)
                for block_tokens in (0, 1024):  # one frame, then token blocks of it
                    placed = c.compress({"layer0_k": array}, codec="zstd(1)", out=frames,
                                        block_tokens=block_tokens)
                    self.assertEqual(placed.totals.raw_bytes, big.nbytes)
                    back = c.decompress(placed.frames, out=(region, 0, big.nbytes))
                    self.assertTrue(np.array_equal(back["layer0_k"], big))
                    del back, placed
                del array
        # Each call was one unary Compress: the 32 MiB never had to fit a 1 MiB message.
        self.assertEqual(self.server.handled("Compress"), before + 2)
        self.assertEqual(self.server.handled("CompressStream"), streams)

    def test_a_window_too_small_is_an_error_naming_the_tensor(self):
        with kvcomp.Client(self.server.address, shm_socket=self.socket) as c:
            with c.shared_memory("in", 1 << 20) as inputs, c.shared_memory("out", 4096) as out:
                array = inputs.put(llama_like(3, tokens=64))
                with self.assertRaises(kvcomp.KVCompError) as e:
                    c.compress({"layer0_v": array}, codec="zstd(1)", out=out)
                self.assertEqual(e.exception.code.name, "RESOURCE_EXHAUSTED")
                self.assertIn("'layer0_v'", e.exception.details)
                del array

    def test_shared_memory_needs_the_socket(self):
        with kvcomp.Client(self.server.address) as c:
            with self.assertRaises(ValueError):
                c.shared_memory("x", 4096)


if __name__ == "__main__":
    unittest.main()
