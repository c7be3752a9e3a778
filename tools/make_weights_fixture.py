#!/usr/bin/python3
"""make_weights_fixture.py - write the .osw files tests/test_weights.c reads:
  small.osw  a valid file it reads and corrupts field by field
  edge.osw   valid corner cases: 8-d, empty and last-empty tensors, UTF-8
             names, empty and multi-line metadata values
  empty.osw  no metadata, no tensors (68 bytes)
Needs numpy only. They also seed the fuzzer's corpus (make fuzz).

    /usr/bin/python3 tools/make_weights_fixture.py [DIR]

tests/test_weights.c knows these names, shapes and values: keep them in step.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osw  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DIR = os.path.join(ROOT, "tests", "fixtures", "weights")
DEFAULT_OUT = os.path.join(DEFAULT_DIR, "small.osw")


def fixture():
    tensors = {
        # value[i] = 0.25 * i - 1 (row-major), exactly representable
        "enc.0.weight": (np.arange(24, dtype=np.float32) * 0.25 - 1).reshape(4, 2, 3),
        "enc.0.bias": np.array([0.5, -0.5, 1.5, -1.5], dtype=np.float32),
        # same name length as enc.0.weight: the tests rename it to a duplicate
        "dec.0.weight": (np.arange(15, dtype=np.float32) - 7).reshape(3, 5),
        "gain": np.array(0.75, dtype=np.float32),  # 0-d: a scalar
        "half": np.array([1.0, -2.0, 0.5], dtype=np.float16),
        "steps": np.array([3, -4], dtype=np.int32),
    }
    meta = {
        "kind": "test",
        "sample_rate": "16000",
        "n_fft": "512",
        "hop": "128",
        "n_mels": "80",
        "training_data": "none (synthetic test fixture)",
        "training_command": "tools/make_weights_fixture.py",
        "commit": "-",
        "metrics": "{}",
    }
    return tensors, meta


def edge():
    tensors = {
        "eight.d": np.arange(2 * 1 * 3 * 1 * 1 * 2 * 1 * 2, dtype=np.float32)
                     .reshape(2, 1, 3, 1, 1, 2, 1, 2),
        "none": np.zeros((3, 0), dtype=np.float32),
        "b\u00e9ta.\u03c9": np.full(17, -0.5, dtype=np.float32),  # UTF-8 name, 68 bytes
        "last.empty": np.zeros((0,), dtype=np.float32),  # offset == data_size
    }
    meta = {
        "kind": "edge",
        "empty": "",
        "training_command": "python3 train.py \\\n  --epochs 3\t# two lines",
        "\u00fcnicode": "w\u00e4rt",
    }
    return tensors, meta


def files():
    """(file name, tensors, meta) for every fixture."""
    return [("small.osw",) + fixture(), ("edge.osw",) + edge(), ("empty.osw", {}, {})]


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR
    for name, tensors, meta in files():
        out = os.path.join(d, name)
        osw.write_osw(out, tensors, meta)
        back, meta2 = osw.read_osw(out)
        assert meta2 == meta and list(back) == list(tensors)
        for k in tensors:
            assert back[k].dtype == tensors[k].dtype and np.array_equal(back[k], tensors[k]), k
        print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
