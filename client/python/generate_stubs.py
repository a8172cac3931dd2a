"""Generates kvcomp/v1/kvcomp_pb2{,_grpc}.py with grpc_tools.protoc (Debian python3-grpc-tools).

Usage: generate_stubs.py PROTO_ROOT OUT_DIR
"""
import os
import sys

import grpc_tools
from grpc_tools import protoc

proto_root, out = sys.argv[1], sys.argv[2]
well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
args = ["protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={out}",
        f"--grpc_python_out={out}", os.path.join(proto_root, "kvcomp/v1/kvcomp.proto")]
if protoc.main(args) != 0:
    sys.exit("grpc_tools.protoc failed")
# The generated modules import `kvcomp.v1`, which lives inside this package.
open(os.path.join(out, "kvcomp", "v1", "__init__.py"), "w").close()
