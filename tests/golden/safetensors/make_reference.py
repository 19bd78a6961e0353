#!/usr/bin/env python3
"""Generates the safetensors reference files for tests/unit/test_safetensors.c
with the PyPI `safetensors` package and numpy only (no torch).

numpy has no bfloat16, so BF16 tensors are passed to the library's own
serializer (safetensors.serialize_file with a TensorSpec of dtype "bfloat16")
as raw 16-bit patterns; the library writes the header and layout itself.
The library writes __metadata__ from a hash map, so its key order is not
reproducible: files compared byte for byte carry a single metadata key.

Run from the repository root with `make golden` (pins in requirements/golden.txt).
"""
import json
import os

import numpy as np
import safetensors
from safetensors import TensorSpec, serialize_file
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def bits32(a):
    return [int(x) for x in np.asarray(a, dtype=np.float32).view(np.uint32).ravel()]


def bf16_rne(a):
    """F32 -> BF16 bit patterns, round to nearest even (finite inputs)."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def save_with_bf16(path, tensors, metadata):
    """tensors: list of (name, dtype string, shape, contiguous numpy array)."""
    specs = {}
    keep = []
    for name, dtype, shape, arr in tensors:
        arr = np.ascontiguousarray(arr)
        keep.append(arr)
        specs[name] = TensorSpec(dtype=dtype, shape=list(shape),
                                 data_ptr=arr.ctypes.data, data_len=arr.nbytes)
    serialize_file(specs, path, metadata=metadata)


def main():
    expected = {"safetensors_version": safetensors.__version__, "numpy_version": np.__version__}

    # F32 2x3 with known values.
    x = np.array([[1.0, -2.0, 0.5], [3.25, -0.0, 1e-3]], dtype=np.float32)
    save_file({"x": x}, os.path.join(HERE, "f32.safetensors"), metadata={"format": "np"})
    expected["f32"] = {"name": "x", "shape": [2, 3], "bits": bits32(x)}

    # F16 including subnormals, infinity, the largest finite value and a NaN.
    h = np.array([1.0, -0.0, 0.1, 65504.0, 2.0**-24, 2.0**-14 * 0.75, np.inf, -np.inf, np.nan],
                 dtype=np.float16)
    save_file({"h": h}, os.path.join(HERE, "f16.safetensors"))
    expected["f16"] = {"name": "h", "shape": [9],
                       "f16_bits": [int(v) for v in h.view(np.uint16)],
                       "bits": bits32(h.astype(np.float32))}

    # BF16 2x2 from F32 values rounded by RNE; expected floats are bits << 16.
    src = np.array([1.0, -3.140625, 1.00390625, 1e30], dtype=np.float32)
    b = bf16_rne(src)
    save_with_bf16(os.path.join(HERE, "bf16.safetensors"), [("w", "bfloat16", (2, 2), b)], None)
    expected["bf16"] = {"name": "w", "shape": [2, 2], "bf16_bits": [int(v) for v in b],
                        "bits": [int(v) << 16 for v in b]}

    # Mixed dtypes with one metadata key, for byte-equality with the C writer.
    a = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    c = np.array([0.5, -1.5, 2.0, 65504.0], dtype=np.float16)
    d = bf16_rne(np.array([1.0, 2.0, -0.5, 7.0], dtype=np.float32))
    path = os.path.join(HERE, "mixed.safetensors")
    save_with_bf16(path, [("c.half", "float16", (4,), c.view(np.uint16)),
                          ("a.weight", "float32", (2, 3), a),
                          ("d.bf", "bfloat16", (2, 2), d)], {"format": "pt"})
    with open(path, "rb") as fp:
        n = int.from_bytes(fp.read(8), "little")
        header = json.loads(fp.read(n))
    expected["mixed"] = {"order": [k for k in header if k != "__metadata__"],
                         "a_bits": bits32(a), "c_f16_bits": [int(v) for v in c.view(np.uint16)],
                         "d_bf16_bits": [int(v) for v in d], "header_len": n}

    # Two-shard checkpoint with an index.
    sd = os.path.join(HERE, "sharded")
    os.makedirs(sd, exist_ok=True)
    s1 = {"layer.0.weight": np.array([[1, 2], [3, 4]], dtype=np.float32),
          "layer.0.bias": np.array([0.5, -0.5], dtype=np.float32)}
    s2 = {"layer.1.weight": np.array([[5, 6, 7]], dtype=np.float32)}
    f1, f2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    save_file(s1, os.path.join(sd, f1), metadata={"format": "np"})
    save_file(s2, os.path.join(sd, f2), metadata={"format": "np"})
    total = sum(v.nbytes for v in list(s1.values()) + list(s2.values()))
    wm = {k: f1 for k in s1}
    wm.update({k: f2 for k in s2})
    with open(os.path.join(sd, "model.safetensors.index.json"), "w") as fp:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, fp, indent=2)
        fp.write("\n")
    expected["sharded"] = {k: {"shard": wm[k], "bits": bits32(v)}
                           for k, v in list(s1.items()) + list(s2.items())}

    with open(os.path.join(HERE, "expected.json"), "w") as fp:
        json.dump(expected, fp, indent=2)
        fp.write("\n")
    for root, _, files in os.walk(HERE):  # the library creates files 0600
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


if __name__ == "__main__":
    main()
