#!/usr/bin/python3
"""test_osw.py - checks of tools/osw.py (needs numpy; the torch checks are
skipped without torch). Run from anywhere:

    /usr/bin/python3 tools/test_osw.py

The C reader's own tests are tests/test_weights.c; they need no Python.
"""

import os
import re
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import osw  # noqa: E402
import make_weights_fixture  # noqa: E402

try:
    import torch
except ImportError:  # CI has no torch
    torch = None


class Format(unittest.TestCase):
    def test_version_matches_c_header(self):
        with open(os.path.join(ROOT, "src", "nn", "weights.h")) as f:
            h = f.read()
        m = re.search(r"#define OSW_VERSION (\d+)", h)
        self.assertIsNotNone(m)
        self.assertEqual(int(m.group(1)), osw.OSW_VERSION)
        for name, value in [("OSW_ALIGN", osw.ALIGN), ("OSW_MAX_DIMS", osw.MAX_DIMS),
                            ("OSW_MAX_KEY", osw.MAX_KEY), ("OSW_MAX_VALUE", osw.MAX_VALUE),
                            ("OSW_MAX_NAME", osw.MAX_NAME),
                            ("OSW_FIXED_HEADER", osw.FIXED_HEADER)]:
            m = re.search(r"#define %s (\d+)" % name, h)
            self.assertEqual(int(m.group(1)), value, name)

    def test_fixture_is_current(self):
        # the committed fixtures are what the script writes today
        for name, tensors, meta in make_weights_fixture.files():
            with open(os.path.join(make_weights_fixture.DEFAULT_DIR, name), "rb") as f:
                self.assertEqual(f.read(), osw.encode_osw(tensors, meta), name)

    def test_round_trip(self):
        rng = np.random.default_rng(1)
        tensors = {
            "a": rng.standard_normal((3, 4, 5, 6)).astype(np.float32),
            "b.scalar": np.float32(2.5),
            "c.empty": np.zeros((0, 3), np.float32),
            "d.f64": rng.standard_normal(7),           # stored as f32
            "e.half": np.arange(5, dtype=np.float16),
            "f.int": np.array([[1, -2], [3, 2**31 - 1]], np.int32),
            "g.strided": rng.standard_normal((6, 8)).astype(np.float32)[::2, ::3],
            "h.8d": np.ones((1, 2, 1, 2, 1, 2, 1, 2), np.float32),
            "i.unicode.é": np.ones(65, np.float32),
        }
        meta = {"kind": "denoise", "empty": "", "cmd": "python3 train.py --x 1\n--y",
                "ünïcode": "välue"}
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.osw")
            osw.write_osw(p, tensors, meta)
            self.assertEqual(os.listdir(d), ["x.osw"])  # no temporary left
            back, meta2 = osw.read_osw(p)
            with open(p, "rb") as f:
                data = f.read()
        self.assertEqual(meta2, meta)
        self.assertEqual(list(back), list(tensors))
        for k, a in tensors.items():
            a = np.asarray(a)
            want = a.astype(np.float32) if a.dtype == np.float64 else a
            self.assertEqual(back[k].dtype, want.dtype, k)
            self.assertEqual(back[k].shape, want.shape, k)
            np.testing.assert_array_equal(back[k], want, k)
        # layout: data section and every tensor 64-byte aligned
        data_offset = int.from_bytes(data[24:32], "little")
        self.assertEqual(data_offset % 64, 0)
        self.assertEqual(len(data) % 64, 4)

    def test_empty_file(self):
        b = osw.encode_osw({}, {})
        t, m, v = osw.decode_osw(b)
        self.assertEqual((t, m, v), ({}, {}, osw.OSW_VERSION))
        self.assertEqual(len(b), 68)

    def test_reader_refuses_damage(self):
        b = bytearray(osw.encode_osw({"w": np.ones(4, np.float32)}, {"kind": "x"}))
        for n in (0, 5, 63, 64, len(b) - 1):
            with self.assertRaises(osw.OSWError):
                osw.decode_osw(b[:n])
        c = bytearray(b)
        c[-10] ^= 1
        with self.assertRaisesRegex(osw.OSWError, "checksum"):
            osw.decode_osw(c)
        c = bytearray(b)
        c[8] = 2
        with self.assertRaisesRegex(osw.OSWError, "version 2"):
            osw.decode_osw(c)
        with self.assertRaisesRegex(osw.OSWError, "magic"):
            osw.decode_osw(b"RIFF" + bytes(b[4:]))

    def test_writer_refuses_bad_input(self):
        bad = [
            ({"w": np.ones(2, np.int64)}, {}),
            ({"w": np.ones(2, np.complex64)}, {}),
            ({"": np.ones(2, np.float32)}, {}),
            ({"a\0b": np.ones(2, np.float32)}, {}),
            ({"x" * 257: np.ones(2, np.float32)}, {}),
            ({"w": np.ones((1,) * 9, np.float32)}, {}),
            ({"w": np.array([1e300])}, {}),
            ({}, {"": "v"}),
            ({}, {"k": 3}),
            ({}, {"k": "v" * 65537}),
        ]
        for tensors, meta in bad:
            with self.assertRaises(osw.OSWError, msg=repr(list(tensors) + list(meta))):
                osw.encode_osw(tensors, meta)

    def test_failed_write_leaves_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.osw")
            with self.assertRaises(osw.OSWError):
                osw.write_osw(p, {"w": np.ones(2, np.int64)}, {})
            self.assertEqual(os.listdir(d), [])


class Fold(unittest.TestCase):
    def test_fold_numpy_linear(self):
        # out_dim 0 on a Linear-shaped weight, checked by direct arithmetic
        rng = np.random.default_rng(2)
        w, b = rng.standard_normal((3, 4)), rng.standard_normal(3)
        g, beta = rng.standard_normal(3), rng.standard_normal(3)
        mean, var = rng.standard_normal(3), rng.random(3) + 0.1
        x = rng.standard_normal(4)
        wf, bf = osw.fold_batchnorm(w, b, g, beta, mean, var, eps=1e-3)
        want = (w @ x + b - mean) / np.sqrt(var + 1e-3) * g + beta
        np.testing.assert_allclose(wf @ x + bf, want, rtol=1e-5, atol=1e-5)
        self.assertEqual(wf.dtype, np.float32)
        wf, bf = osw.fold_batchnorm(w, None, None, None, mean, var)
        np.testing.assert_allclose(wf @ x + bf, (w @ x - mean) / np.sqrt(var + 1e-5),
                                   rtol=1e-5, atol=1e-5)

    @unittest.skipIf(torch is None, "no torch")
    def test_fold_torch(self):
        torch.manual_seed(0)
        nn = torch.nn
        cases = [
            (nn.Conv1d(3, 5, 3, padding=1), nn.BatchNorm1d(5), (2, 3, 11), 0, 1),
            (nn.Conv2d(4, 6, (3, 2), groups=2, bias=False), nn.BatchNorm2d(6), (2, 4, 7, 5), 0, 1),
            (nn.ConvTranspose1d(3, 5, 4, stride=2), nn.BatchNorm1d(5), (2, 3, 9), 1, 1),
            (nn.ConvTranspose2d(4, 6, (3, 2), stride=(1, 2), groups=2), nn.BatchNorm2d(6),
             (2, 4, 5, 6), 1, 2),
            (nn.ConvTranspose2d(6, 6, 2, groups=3, bias=False), nn.BatchNorm2d(6, affine=False),
             (1, 6, 4, 4), 1, 3),
        ]
        for conv, bn, xshape, out_dim, groups in cases:
            with torch.no_grad():
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.5, 2)
                if bn.affine:
                    bn.weight.uniform_(0.5, 1.5)
                    bn.bias.uniform_(-1, 1)
            seq = nn.Sequential(conv, bn).eval()
            sd = osw.state_dict_to_tensors(seq.state_dict())
            self.assertNotIn("1.num_batches_tracked", sd)
            self.assertTrue(all(a.dtype == np.float32 for a in sd.values()))
            w, b = osw.fold_batchnorm(sd["0.weight"], sd.get("0.bias"), sd.get("1.weight"),
                                      sd.get("1.bias"), sd["1.running_mean"],
                                      sd["1.running_var"], bn.eps, out_dim=out_dim,
                                      groups=groups)
            with torch.no_grad():
                x = torch.randn(*xshape)
                want = seq(x)
                folded = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size,
                                    stride=conv.stride, padding=conv.padding,
                                    groups=conv.groups, bias=True)
                folded.weight.copy_(torch.from_numpy(w))
                folded.bias.copy_(torch.from_numpy(b))
                got = folded(x)
            err = (got - want).abs().max().item() / want.abs().max().item()
            self.assertLess(err, 1e-5, type(conv).__name__)

    @unittest.skipIf(torch is None, "no torch")
    def test_state_dict_round_trip(self):
        m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                torch.nn.GRU(4, 2)).double()
        sd = osw.state_dict_to_tensors(m.state_dict())
        self.assertEqual(list(sd), [k for k in m.state_dict() if "num_batches" not in k])
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.osw")
            osw.write_osw(p, sd, {"kind": "test"})
            back, _ = osw.read_osw(p)
        for k, v in m.state_dict().items():
            if k in sd:
                np.testing.assert_array_equal(back[k], v.float().numpy())


if __name__ == "__main__":
    unittest.main()
