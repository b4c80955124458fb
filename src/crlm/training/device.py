"""The device, its numeric precision and memory layout: CUDA when present, else CPU.

channels_last everywhere (measured +30-60% per training step on this project's
CPU models, and the fast layout for cuDNN); bf16 autocast for training where the
hardware computes bf16 natively (a CUDA GPU with bf16, a CPU with AVX512-BF16 or
AMX), since elsewhere it is emulated and slower than fp32.
"""

from __future__ import annotations

import contextlib

import torch

from crlm.config import PRECISIONS

MEMORY_FORMAT = torch.channels_last


def select_device(preference: str) -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device: cuda was asked for but torch sees no CUDA device; "
                           "set train.device: auto or cpu")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def resolve_precision(preference: str, device: torch.device) -> str:
    """train.precision -> "bf16" or "fp32"; "auto" is bf16 only where the hardware computes it natively."""
    if preference not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {preference!r}")
    if preference == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return preference


def autocast(device: torch.device, precision: str | None = None):
    """bf16 autocast for precision "bf16"; by default (inference) bf16 on CUDA only and fp32 on a CPU."""
    precision = precision or ("bf16" if device.type == "cuda" else "fp32")
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_deterministic(seed: int) -> None:
    """Same seed, same data, same machine -> the same weights (CPU; CUDA as far as it allows)."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
