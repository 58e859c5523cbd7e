"""The engine's own decode kernels (kernels.c), built with the C compiler on first use and
loaded with ctypes.

Why not torch's int8 paths at one writer: a decode step multiplies one row by every weight
matrix, so it is bound by how fast the weights stream from memory. On this 2-core AMD EPYC
(AVX512-VNNI), one core reads ~26-37 GB/s; torch's dynamic int8 linear (fbgemm, x86 or
onednn packing) reached ~12-17 GB/s on GPT-2 small's matrices at one row, and
`_weight_int8pack_mm` and `_int_mm` were slower still (bench/int8_kernel.py). Up to four
rows `FusedDecode` runs a whole block per call (no ~15 torch operators per layer); beyond,
the weights are reused enough that fbgemm's GEMM is as fast or faster, and only attention
(`decode_attention`, 1.4-2.4x PyTorch's SDPA over an fp32 cache) runs here.

Nothing depends on it: without gcc/cc, without AVX512-VNNI, or with RELAY_INT8_KERNEL=0
every step stays on torch's paths (the same int8 weights; only the activations'
quantisation differs: per row and symmetric here, per tensor and asymmetric in fbgemm).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("kernels.c")
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC")
_LINEAR = "relay_int8_linear"
_ATTENTION = "relay_decode_attention"
_LAYER = "relay_decode_layer"
MAX_ROWS = 2  # Int8Linear: from four rows on fbgemm was as fast or faster (bench/int8_kernel.py)
# FusedDecode, up to this many rows: at 4 a block per call beat the same kernels block by
# block 1.13-1.19x (GPT-2 small) and 1.46-1.74x (default-en); at 8 rows GPT-2 small broke even
# (bench/profile_engine.py --fused-rows, one thread).
FUSED_ROWS = 4
_P, _I = ctypes.c_void_p, ctypes.c_int


def _cpu_flags() -> str:
    """The first CPU's flags line of /proc/cpuinfo ("" where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    return next((line for line in text.splitlines() if line.startswith("flags")), "") + " "


def cpu_has_vnni() -> bool:
    """Whether this CPU has AVX512-VNNI (Linux: /proc/cpuinfo's flags)."""
    flags = _cpu_flags()
    return " avx512_vnni " in flags and " avx512bw " in flags


def _cache_dir() -> Path:
    root = os.environ.get("RELAY_KERNEL_DIR") or Path.home() / ".cache" / "relay-novel"
    return Path(root) / "kernels"


@cache
def library() -> ctypes.CDLL | None:
    """kernels.c compiled once per source and flags (cached on disk, so later processes
    load it in milliseconds), its functions' signatures set; None where it cannot run here."""
    if os.environ.get("RELAY_INT8_KERNEL", "1") == "0" or not sys.platform.startswith("linux"):
        return None
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None or not cpu_has_vnni():
        return None
    source = SOURCE.read_bytes()
    # -march=native: a library built on another CPU (a shared home) is never loaded here
    built_for = " ".join((compiler, *FLAGS, _cpu_flags()))
    key = hashlib.sha256(source + built_for.encode()).hexdigest()[:16]
    path = _cache_dir() / f"kernels-{key}.so"
    try:
        if not path.exists():
            _compile(compiler, path)
        lib = ctypes.CDLL(str(path))
    except (OSError, subprocess.CalledProcessError) as exc:
        log.warning("engine kernels unavailable, using torch's int8 linear and attention: %s", exc)
        return None
    getattr(lib, _LINEAR).argtypes = [_I, _I, _I, _P, _P, _P, _P, _P, _P, _P, _P, _I]
    getattr(lib, _ATTENTION).argtypes = [_I, _I, _I, _I, _I, _P, _P, _P, _P, _P, _I]
    getattr(lib, _LAYER).argtypes = [_P, _I, _I, _I, _P, _P, _P, _P, _P, _I]
    for name in (_LINEAR, _ATTENTION, _LAYER):
        getattr(lib, name).restype = None
    return lib


def _compile(compiler: str, library: Path) -> None:
    """Build into a temporary file, then rename: processes starting at once never load a
    half-written library."""
    library.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=library.parent)
    os.close(fd)
    try:
        cmd = [compiler, *FLAGS, "-o", tmp, str(SOURCE), "-lm"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        os.replace(tmp, library)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def pack_weights(weight: torch.Tensor) -> torch.Tensor:
    """int8 weights (N, K) in kernels.c's layout: blocks of 16 outputs, each K4 / 4 chunks
    of 64 bytes, chunk g holding inputs 4g..4g+3 of the block's 16 outputs (N padded to 16
    outputs and K to K4, a multiple of 4, with zeros)."""
    N, K = weight.shape
    n16, k4 = -(-N // 16) * 16, -(-K // 4) * 4
    padded = torch.zeros(n16, k4, dtype=torch.int8)
    padded[:N, :K] = weight
    return padded.view(n16 // 16, 16, k4 // 4, 4).permute(0, 2, 1, 3).contiguous()


class Int8Linear(nn.Module):
    """A dynamically quantised linear whose few-row calls (decode steps) run the engine's
    kernel on the same int8 weights; longer inputs (prefill) keep torch's fbgemm path.
    The kernel's packed copy of the weights sits next to fbgemm's (twice the int8 bytes)."""

    def __init__(self, quantized: nn.Module, kernel: ctypes._CFuncPtr) -> None:
        """`kernel`: the library's relay_int8_linear."""
        super().__init__()
        self.quantized = quantized
        self.kernel = kernel
        weight, bias = quantized._packed_params._weight_bias()
        self.in_features, self.out_features = quantized.in_features, quantized.out_features
        plain = weight.int_repr()
        self.register_buffer("packed", pack_weights(plain), persistent=False)
        self.register_buffer("scales", weight.q_per_channel_scales().float(), persistent=False)
        self.register_buffer("row_sums", plain.sum(1, dtype=torch.int32), persistent=False)
        self.bias = None if bias is None else bias.detach().float().contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        if rows > MAX_ROWS or x.dtype != torch.float32:
            return self.quantized(x)
        flat = x.reshape(rows, self.in_features).contiguous()
        out = torch.empty(rows, self.out_features)
        xq = torch.empty(rows * (self.in_features + 3), dtype=torch.uint8)
        xscale = torch.empty(rows)
        self.kernel(
            rows, self.out_features, self.in_features, flat.data_ptr(), self.packed.data_ptr(),
            self.row_sums.data_ptr(), self.scales.data_ptr(),
            0 if self.bias is None else self.bias.data_ptr(), out.data_ptr(), xq.data_ptr(),
            xscale.data_ptr(), torch.get_num_threads(),
        )  # fmt: skip
        return out.view(*x.shape[:-1], self.out_features)


def decode_attention(q: torch.Tensor, kv: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Attention of one query per row, (B, H, 1, D), over the first lengths[b] positions of
    row b in one layer's fp32 cache kv (2, S, H, T_max, D); returns (B, H, 1, D)."""
    lib = library()
    assert lib is not None and kv.dtype == torch.float32 and kv.is_contiguous()
    B, H, _, D = q.shape
    _, S, _, T_max, _ = kv.shape
    query = q.contiguous()
    out = torch.empty_like(query)
    scores = torch.empty(B * H * T_max)
    getattr(lib, _ATTENTION)(
        B, S, H, T_max, D, query.data_ptr(), kv.data_ptr(), lengths.data_ptr(), out.data_ptr(),
        scores.data_ptr(), torch.get_num_threads(),
    )  # fmt: skip
    return out


def use_int8_kernel(module: nn.Module) -> int:
    """Wrap every dynamically quantised linear under `module` in Int8Linear (in place) when
    the kernels run here; returns how many were wrapped."""
    lib = library()
    return 0 if lib is None else _wrap(module, getattr(lib, _LINEAR))


def _wrap(module: nn.Module, kernel: ctypes._CFuncPtr) -> int:
    wrapped = 0
    for name, child in list(module.named_children()):
        if isinstance(child, torch.ao.nn.quantized.dynamic.Linear):
            setattr(module, name, Int8Linear(child, kernel))
            wrapped += 1
        else:
            wrapped += _wrap(child, kernel)
    return wrapped


class _Linear(ctypes.Structure):
    _fields_ = [("w", _P), ("wsum", _P), ("scale", _P), ("bias", _P), ("out", _I), ("in_", _I)]


class _Layer(ctypes.Structure):  # kernels.c's Layer, field by field
    _fields_ = [
        ("C", _I), ("H", _I), ("D", _I), ("gelu_tanh", _I), ("eps", ctypes.c_float),
        ("ln1_w", _P), ("ln1_b", _P), ("ln2_w", _P), ("ln2_b", _P),
        ("qkv", _Linear), ("attn_out", _Linear), ("fc", _Linear), ("proj", _Linear),
    ]  # fmt: skip


def _linear_struct(linear: Int8Linear) -> _Linear:
    bias = 0 if linear.bias is None else linear.bias.data_ptr()
    return _Linear(
        linear.packed.data_ptr(), linear.row_sums.data_ptr(), linear.scales.data_ptr(), bias,
        linear.out_features, linear.in_features,
    )  # fmt: skip


class FusedDecode:
    """GPT-2 blocks as kernels.c's Layer structs, for decode steps of at most `max_rows` rows:
    one call per layer. The structs point into the blocks' tensors, which the engine owns
    and this object keeps referenced; built once, after the weights are final."""

    def __init__(self, blocks: nn.ModuleList, n_head: int, tanh_gelu: bool) -> None:
        lib = library()
        assert lib is not None
        self.layer_fn = getattr(lib, _LAYER)
        self.blocks = blocks  # keeps every pointed-to tensor alive
        self.layers = [self._layer(block, n_head, tanh_gelu) for block in blocks]
        self.width = blocks[0].fc.out_features
        self.max_rows = FUSED_ROWS

    def __deepcopy__(self, memo: dict) -> None:
        return None  # pointers cannot be copied: a copied engine runs without it

    @staticmethod
    def _layer(block: nn.Module, n_head: int, tanh_gelu: bool) -> _Layer:
        C = block.ln_1.weight.shape[0]
        lns = [t.detach().float().contiguous() for ln in (block.ln_1, block.ln_2)
               for t in (ln.weight, ln.bias)]  # fmt: skip
        block._fused_ln = lns  # the struct points into these
        return _Layer(
            C, n_head, C // n_head, int(tanh_gelu), block.ln_1.eps,
            *(t.data_ptr() for t in lns),
            *(_linear_struct(getattr(block, n)) for n in ("qkv", "attn_out", "fc", "proj")),
        )  # fmt: skip

    def run(self, x: torch.Tensor, kv: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """x (B, C) fp32 through every block in place, rows 0..B-1 at their positions of
        cache kv (L, 2, S, H, T_max, D) fp32; returns x."""
        B, C = x.shape
        _, _, S, H, T_max, _ = kv.shape
        work = torch.empty(B * (6 * C + self.width + H * T_max + 1))
        qwork = torch.empty(B * (self.width + 3), dtype=torch.uint8)
        threads = torch.get_num_threads()
        for layer, struct in enumerate(self.layers):
            self.layer_fn(
                ctypes.byref(struct), B, S, T_max, x.data_ptr(), kv[layer].data_ptr(),
                positions.data_ptr(), work.data_ptr(), qwork.data_ptr(), threads,
            )  # fmt: skip
        return x
