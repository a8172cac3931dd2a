"""llama.cpp sequence-state files from Python: the files llama.cpp wrote
(tests/data/llama_state), read and written back byte for byte, through the real kvcomp-server
and between the Python client and the C++ CLI.

Run by ctest with KVCOMP_LLAMA_STATE_DIR, KVCOMP_SERVER_BIN and KVCOMP_CLI_BIN set.
"""

import json
import os
import subprocess
import tempfile
import unittest

import numpy as np

import kvcomp
from test_client import ServerTestCase

STATES = os.environ.get("KVCOMP_LLAMA_STATE_DIR", "")


def manifest():
    with open(os.path.join(STATES, "manifest.json")) as f:
        return json.load(f)["files"]


def state_path(name):
    return os.path.join(STATES, name)


def read(path):
    with open(path, "rb") as f:
        return f.read()


@unittest.skipUnless(os.path.isdir(STATES), "tests/data/llama_state is absent")
class LlamaStateFileTest(unittest.TestCase):
    def test_every_file_reads_and_writes_back_byte_identical(self):
        files = manifest()
        self.assertGreaterEqual(len(files), 13)
        for f in files:
            with self.subTest(f["file"]):
                data = read(state_path(f["file"]))
                st = kvcomp.parse_llama_state(data, f["file"])
                self.assertEqual(len(st.tokens), f["cells"])
                self.assertEqual(len(st.positions), f["cells"])
                self.assertEqual(st.positions.tolist(), list(range(f["cells"])))
                self.assertTrue(all(ids == [0] for ids in st.seq_ids))
                if f["cells"]:
                    self.assertEqual(st.v_trans, f["vTrans"])
                    self.assertEqual(st.n_layer, 5)
                    self.assertEqual(len(st.tensors), 10)
                    self.assertEqual(st.datatypes["layer3_k"],
                                     {"F16": "FP16", "F32": "FP32"}.get(f["kType"], f["kType"]))
                    self.assertEqual(st.tensors["layer0_v"].shape[0], f["cells"])
                with tempfile.TemporaryDirectory() as tmp:
                    out = os.path.join(tmp, "back.state")
                    kvcomp.save_llama_state(out, st)
                    self.assertEqual(read(out), data)

    def test_transposed_v_reads_as_the_same_array(self):
        # Layer 0's K and V depend on the token embeddings alone: the same with flash attention
        # on (V as rows) or off (V transposed).
        a = kvcomp.load_llama_state(state_path("f16-vtrans1.state"))
        b = kvcomp.load_llama_state(state_path("f16-vtrans0.state"))
        self.assertEqual((a.v_trans, b.v_trans), (1, 0))
        np.testing.assert_array_equal(a.tensors["layer0_v"], b.tensors["layer0_v"])
        self.assertEqual(a.tensors["layer0_v"].shape, (24, 32))

    def test_quantised_blocks_are_structured_arrays(self):
        st = kvcomp.load_llama_state(state_path("q8_0-vtrans0.state"))
        k = st.tensors["layer0_k"]
        self.assertEqual(k.dtype, kvcomp.Q8_0_BLOCK)
        self.assertEqual(k.shape, (20, 4))  # 4 heads of 32: one block a head
        values = k["d"].astype(np.float32)[..., None] * k["qs"]
        self.assertTrue(np.isfinite(values).all())
        q4 = kvcomp.load_llama_state(state_path("q4_0-vtrans0.state")).tensors["layer1_v"]
        self.assertEqual(q4.dtype, kvcomp.Q4_0_BLOCK)

    def test_bad_files_name_the_field_and_offset(self):
        data = read(state_path("f16-vtrans1.state"))
        for cut in list(range(0, 400)) + [len(data) - 1]:
            with self.assertRaises(kvcomp.StateFormatError) as e:
                kvcomp.parse_llama_state(data[:cut], "cut")
            self.assertIn("at byte offset", str(e.exception))
        bad = bytearray(data)
        bad[4] = 7
        with self.assertRaisesRegex(kvcomp.StateFormatError, "version at byte offset 4 is 7"):
            kvcomp.parse_llama_state(bytes(bad))
        with self.assertRaisesRegex(kvcomp.StateFormatError, "end of the cache"):
            kvcomp.parse_llama_state(data + b"\0")
        st = kvcomp.parse_llama_state(data)
        wrong = dict(st.tensors)
        wrong["layer2_k"] = wrong["layer2_k"].astype(np.float32)
        with self.assertRaisesRegex(ValueError, "'layer2_k' is float32"):
            kvcomp.save_llama_state(os.devnull, st.skeleton, wrong)


@unittest.skipUnless(os.path.isdir(STATES), "tests/data/llama_state is absent")
class LlamaStateServerTest(ServerTestCase):
    def cli(self, *args):
        r = subprocess.run([os.environ["KVCOMP_CLI_BIN"], *args, "--server", self.server.address],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_states_round_trip_through_the_server_and_the_cli(self):
        for f in manifest():
            name = f["file"]
            with self.subTest(name), tempfile.TemporaryDirectory() as tmp:
                st = kvcomp.load_llama_state(state_path(name))
                out = self.client.compress(st.tensors, codec="lossless", bf16=st.bf16_names,
                                           token_major=True) if st.tensors else None
                kvc = os.path.join(tmp, "py.kvc")
                kvcomp.save_kvc(kvc, out.frames.values() if out else [], llama_state=st)
                back = kvcomp.read_kvc(kvc)
                self.assertEqual(back.llama_skeleton, st.skeleton)
                tensors = self.client.decompress(back.frames) if back.frames else {}
                restored = os.path.join(tmp, "py.state")
                kvcomp.save_llama_state(restored, back.llama_skeleton, tensors)
                self.assertEqual(read(restored), read(state_path(name)))
                # The CLI decompresses what Python wrote, and Python reads what the CLI wrote.
                self.cli("decompress", kvc, "-o", os.path.join(tmp, "cli.state"))
                self.assertEqual(read(os.path.join(tmp, "cli.state")), read(state_path(name)))
                self.cli("compress", state_path(name), "-o", os.path.join(tmp, "cli.kvc"),
                         "--codec", "lossless-max")
                other = kvcomp.read_kvc(os.path.join(tmp, "cli.kvc"))
                tensors = self.client.decompress(other.frames) if other.frames else {}
                kvcomp.save_llama_state(os.path.join(tmp, "x.state"), other.llama_skeleton,
                                        tensors)
                self.assertEqual(read(os.path.join(tmp, "x.state")), read(state_path(name)))

    def test_lossy_on_q8_0_is_refused(self):
        st = kvcomp.load_llama_state(state_path("q8_0-vtrans0.state"))
        with self.assertRaises(kvcomp.KVCompError) as e:
            self.client.compress(st.tensors, codec="bounded(cos=0.99)", token_major=True)
        self.assertIn("losslessly only", e.exception.details)


if __name__ == "__main__":
    unittest.main()
