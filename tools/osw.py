#!/usr/bin/python3
"""osw.py - write and read oscine weights files (.osw).

The byte layout is specified in src/nn/weights.h and docs/weights.md; this
module is the only writer. It needs numpy; torch only for
state_dict_to_tensors' input (a state_dict), and it never imports torch.

    import osw
    osw.write_osw("models/denoise.osw",
                  osw.state_dict_to_tensors(model.state_dict()),
                  {"kind": "denoise", "sample_rate": "16000"})
    tensors, meta = osw.read_osw("models/denoise.osw")

Command line: `osw.py FILE` prints a file's metadata and tensors.
"""

import os
import struct
import sys
import tempfile
import zlib

import numpy as np

OSW_VERSION = 1  # src/nn/weights.h: #define OSW_VERSION (tests check they agree)
MAGIC = b"OSCINEW\0"
FIXED_HEADER = 64
ALIGN = 64
MAX_DIMS = 8
MAX_KEY = 256
MAX_VALUE = 65536
MAX_NAME = 256

# dtype code -> numpy little-endian dtype (osw_dtype in weights.h)
DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2"), 2: np.dtype("<i4")}
F32, F16, I32 = 0, 1, 2


class OSWError(ValueError):
    """A file that is not a valid .osw, or data that cannot be written as one."""


def _align(n, a=ALIGN):
    return (n + a - 1) // a * a


def _text(s, what, lo, hi):
    if not isinstance(s, str):
        raise OSWError(f"{what} must be str, not {type(s).__name__}")
    b = s.encode("utf-8")
    if not lo <= len(b) <= hi:
        raise OSWError(f"{what} {s[:40]!r}: {len(b)} bytes, need {lo}..{hi}")
    if b"\0" in b:
        raise OSWError(f"{what} {s[:40]!r}: contains a NUL byte")
    return b


def _as_array(name, a):
    """Tensor data as a C-contiguous little-endian array and its dtype code.
    float16 and int32 keep their type; other floats become float32."""
    a = np.asarray(a)
    if a.dtype == np.float16:
        code = F16
    elif a.dtype == np.int32:
        code = I32
    elif np.issubdtype(a.dtype, np.floating):
        code = F32
    else:
        raise OSWError(f"tensor {name!r}: dtype {a.dtype} not storable "
                       "(use float32, float16 or int32)")
    if a.ndim > MAX_DIMS:
        raise OSWError(f"tensor {name!r}: {a.ndim} dimensions, at most {MAX_DIMS}")
    if code == F32 and a.dtype != np.float32:
        f = np.asarray(a, dtype=np.float64)
        if np.any(np.isfinite(f) & (np.abs(f) > np.finfo(np.float32).max)):
            raise OSWError(f"tensor {name!r}: values overflow float32")
    # asarray(order="C"), not ascontiguousarray: that turns 0-d into 1-d
    return np.asarray(a, dtype=DTYPES[code], order="C"), code


def encode_osw(tensors, meta):
    """The bytes of a .osw file holding tensors (name -> array, in dict order)
    and meta (str -> str, in dict order)."""
    head = bytearray()
    for k, v in meta.items():
        kb = _text(k, "metadata key", 1, MAX_KEY)
        vb = _text(v, f"metadata {k!r} value", 0, MAX_VALUE)
        head += struct.pack("<I", len(kb)) + kb + struct.pack("<I", len(vb)) + vb

    arrays = []
    offset = 0
    for name, a in tensors.items():
        nb = _text(name, "tensor name", 1, MAX_NAME)
        arr, code = _as_array(name, a)
        head += struct.pack("<I", len(nb)) + nb
        head += struct.pack("<II", code, arr.ndim)
        head += struct.pack(f"<{arr.ndim}q", *arr.shape)
        head += struct.pack("<Q", offset)
        arrays.append((offset, arr))
        offset = _align(offset + arr.nbytes)

    header_size = FIXED_HEADER + len(head)
    data_offset = _align(header_size)
    data_size = _align(arrays[-1][0] + arrays[-1][1].nbytes) if arrays else 0
    # The last tensor's padding is kept so every tensor's data is followed by
    # zeros up to a 64-byte boundary (handy for SIMD tails).
    fixed = MAGIC + struct.pack("<IIQQQII16x", OSW_VERSION, 0, header_size,
                                data_offset, data_size, len(meta), len(tensors))
    assert len(fixed) == FIXED_HEADER
    out = bytearray(data_offset + data_size)
    out[:FIXED_HEADER] = fixed
    out[FIXED_HEADER:header_size] = head
    for off, arr in arrays:
        out[data_offset + off:data_offset + off + arr.nbytes] = arr.tobytes()
    out += struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)
    return bytes(out)


def write_osw(path, tensors, meta):
    """Write tensors (dict name -> numpy array) and meta (dict str -> str) to
    path: into a temporary file beside it, then renamed over it, so readers
    never see a half-written file."""
    data = encode_osw(tensors, meta)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".osw-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def decode_osw(data, name="<memory>"):
    """(tensors, meta, version) from the bytes of a .osw file, checked as the
    C reader checks them (raises OSWError)."""
    data = bytes(data)
    n = len(data)

    def bad(msg):
        return OSWError(f"weights {name!r}: {msg}")

    if data[:min(n, 8)] != MAGIC[:min(n, 8)]:
        raise bad("not an oscine weights file (bad magic)")
    if n < FIXED_HEADER:
        raise bad(f"truncated: {n} bytes, the fixed header needs {FIXED_HEADER}")
    (version, flags, header_size, data_offset, data_size, nmeta,
     ntensors) = struct.unpack_from("<IIQQQII", data, 8)
    if not 1 <= version <= OSW_VERSION:
        raise bad(f"format version {version}, this reader reads 1..{OSW_VERSION}")
    if flags or any(data[48:64]):
        raise bad("flags or reserved bytes not zero")
    if header_size < FIXED_HEADER or header_size > data_offset:
        raise bad(f"header_size {header_size} outside {FIXED_HEADER}..{data_offset}")
    if data_offset % ALIGN:
        raise bad(f"data_offset {data_offset} not a multiple of {ALIGN}")
    expect = data_offset + data_size + 4
    if n < expect:
        raise bad(f"truncated: {n} bytes, the header says {expect}")
    if n > expect:
        raise bad(f"{n} bytes, the header says {expect}")
    crc = struct.unpack_from("<I", data, n - 4)[0]
    if zlib.crc32(data[:n - 4]) & 0xFFFFFFFF != crc:
        raise bad("checksum mismatch")

    pos = FIXED_HEADER

    def u32(what):
        nonlocal pos
        if pos + 4 > header_size:
            raise bad(f"{what} runs past header_size {header_size}")
        v = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        return v

    def text(what, lo, hi):
        nonlocal pos
        ln = u32(what + " length")
        if not lo <= ln <= hi or pos + ln > header_size:
            raise bad(f"{what} length {ln} bad")
        b = data[pos:pos + ln]
        pos += ln
        if b"\0" in b:
            raise bad(f"{what} contains NUL")
        # surrogateescape: lossless, so distinct bytes stay distinct keys
        return b.decode("utf-8", "surrogateescape")

    meta = {}
    for _ in range(nmeta):
        k = text("metadata key", 1, MAX_KEY)
        v = text(f"metadata {k!r} value", 0, MAX_VALUE)
        if k in meta:
            raise bad(f"metadata {k!r} duplicated")
        meta[k] = v
    tensors = {}
    for _ in range(ntensors):
        t = text("tensor name", 1, MAX_NAME)
        code = u32(f"tensor {t!r} dtype")
        ndim = u32(f"tensor {t!r} ndim")
        if code not in DTYPES:
            raise bad(f"tensor {t!r}: unknown dtype {code}")
        if ndim > MAX_DIMS:
            raise bad(f"tensor {t!r}: ndim {ndim} > {MAX_DIMS}")
        if pos + 8 * ndim + 8 > header_size:
            raise bad(f"tensor {t!r}: shape runs past header_size")
        shape = struct.unpack_from(f"<{ndim}q", data, pos)
        pos += 8 * ndim
        (off,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        if any(d < 0 for d in shape):
            raise bad(f"tensor {t!r}: negative dimension in {list(shape)}")
        count = int(np.prod(shape, dtype=object)) if shape else 1
        nbytes = count * DTYPES[code].itemsize
        if off % ALIGN:
            raise bad(f"tensor {t!r}: offset {off} not a multiple of {ALIGN}")
        if off + nbytes > data_size:
            raise bad(f"tensor {t!r}: offset {off} + {nbytes} bytes past end of data ({data_size})")
        if t in tensors:
            raise bad(f"tensor {t!r} duplicated")
        start = data_offset + off
        tensors[t] = np.frombuffer(data, DTYPES[code], count, start).reshape(shape).copy()
    if pos != header_size:
        raise bad(f"tables end at {pos}, header_size says {header_size}")
    return tensors, meta, version


def read_osw(path):
    """(tensors, meta) from a .osw file: tensors maps name -> numpy array (a
    copy, in file order), meta maps str -> str. Checks the CRC and every
    field; raises OSWError on a bad file."""
    with open(path, "rb") as f:
        data = f.read()
    tensors, meta, _ = decode_osw(data, path)
    return tensors, meta


def fold_batchnorm(conv_weight, conv_bias, bn_weight, bn_bias, running_mean,
                   running_var, eps=1e-5, out_dim=0, groups=1):
    """Fold an inference-mode BatchNorm that follows a convolution into the
    convolution: returns (weight, bias) as float32 arrays such that
    conv(x, weight) + bias == bn(conv(x, conv_weight) + conv_bias).

    out_dim is the weight dimension that indexes output channels: 0 for
    Conv1d/Conv2d/Linear ([out, in/groups, ...]), 1 for ConvTranspose
    ([in, out/groups, ...]; see fold_batchnorm_transposed). conv_bias,
    bn_weight and bn_bias may be None (no bias, affine=False)."""
    w = np.asarray(conv_weight, dtype=np.float64)
    mean = np.asarray(running_mean, dtype=np.float64).reshape(-1)
    var = np.asarray(running_var, dtype=np.float64).reshape(-1)
    c = mean.shape[0]
    gamma = np.ones(c) if bn_weight is None else np.asarray(bn_weight, np.float64).reshape(-1)
    beta = np.zeros(c) if bn_bias is None else np.asarray(bn_bias, np.float64).reshape(-1)
    b = np.zeros(c) if conv_bias is None else np.asarray(conv_bias, np.float64).reshape(-1)
    if not (var.shape[0] == gamma.shape[0] == beta.shape[0] == b.shape[0] == c):
        raise ValueError("fold_batchnorm: channel counts differ")
    if np.any(var + eps <= 0):
        raise ValueError("fold_batchnorm: running_var + eps must be > 0")
    scale = gamma / np.sqrt(var + eps)  # (out,)
    if out_dim == 0:
        if w.shape[0] != c:
            raise ValueError(f"fold_batchnorm: weight dim 0 is {w.shape[0]}, bn has {c}")
        w = w * scale.reshape((c,) + (1,) * (w.ndim - 1))
    elif out_dim == 1:
        # ConvTranspose weight [in, out/groups, k...]: in-channel block g feeds
        # out channels g*opg .. (g+1)*opg-1.
        cin, opg = w.shape[0], w.shape[1]
        if groups < 1 or cin % groups or opg * groups != c:
            raise ValueError(f"fold_batchnorm: weight {w.shape} with groups={groups} "
                             f"does not give {c} output channels")
        s = scale.reshape(groups, 1, opg)           # (groups, 1, out/groups)
        s = np.broadcast_to(s, (groups, cin // groups, opg)).reshape(cin, opg)
        w = w * s.reshape((cin, opg) + (1,) * (w.ndim - 2))
    else:
        raise ValueError("fold_batchnorm: out_dim must be 0 or 1")
    bias = (b - mean) * scale + beta
    return w.astype(np.float32), bias.astype(np.float32)


def fold_batchnorm_transposed(conv_weight, conv_bias, bn_weight, bn_bias,
                              running_mean, running_var, eps=1e-5, groups=1):
    """fold_batchnorm for a transposed convolution (output channels in dim 1)."""
    return fold_batchnorm(conv_weight, conv_bias, bn_weight, bn_bias,
                          running_mean, running_var, eps, out_dim=1, groups=groups)


def state_dict_to_tensors(state_dict):
    """A PyTorch state_dict (or any mapping of name -> tensor/array) as a dict
    of float32 numpy arrays, in the same order. BatchNorm's integer
    `num_batches_tracked` counters are dropped (inference does not use them);
    other tensors are detached, moved to the CPU and cast to float32."""
    out = {}
    for k, v in state_dict.items():
        if k.endswith("num_batches_tracked"):
            continue
        if hasattr(v, "detach"):  # a torch.Tensor: no torch import needed
            v = v.detach().cpu()
            if v.is_complex():
                raise OSWError(f"tensor {k!r}: complex; store real and imaginary parts")
            v = v.float().numpy()
        a = np.asarray(v)
        if np.iscomplexobj(a):
            raise OSWError(f"tensor {k!r}: complex; store real and imaginary parts")
        out[k] = np.asarray(a, dtype=np.float32, order="C")
    return out


def _describe(path):
    tensors, meta = read_osw(path)
    print(f"{path}: oscine weights v{OSW_VERSION}")
    for k, v in meta.items():
        print(f"  {k:20s} {v}")
    total = 0
    for k, a in tensors.items():
        total += a.size
        print(f"  {k:40s} {str(a.dtype):8s} {list(a.shape)} {a.size}")
    print(f"  {len(tensors)} tensors, {total} parameters")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: osw.py FILE.osw")
    try:
        _describe(sys.argv[1])
    except (OSError, OSWError) as e:
        sys.exit(f"osw.py: {e}")
