"""The device, its numeric precision and memory layout: CUDA when present, else CPU.

channels_last everywhere (measured +30-60% per training step on this project's
CPU models, and the fast layout for cuDNN); bf16 autocast for training where the
hardware computes bf16 natively (a CUDA GPU with bf16, a CPU with AVX512-BF16 or
AMX), since elsewhere it is emulated and slower than fp32.
"""

from __future__ import annotations

import contextlib

import torch

from crlm.core.options import look_up

MEMORY_FORMAT = torch.channels_last


def any_device() -> torch.device:
    """CUDA when torch sees a CUDA device, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def cpu_device() -> torch.device:
    return torch.device("cpu")


def cuda_device() -> torch.device:
    if not torch.cuda.is_available():
        raise RuntimeError(
            "train.device: cuda was asked for but torch sees no CUDA device; set train.device: auto or cpu"
        )
    return torch.device("cuda")


# train.device -> the device it selects
DEVICES = {"auto": any_device, "cpu": cpu_device, "cuda": cuda_device}


def select_device(preference: str) -> torch.device:
    return look_up("train.device", preference, DEVICES)()


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def native_or_fp32(device: torch.device) -> str:
    """bf16 only where the hardware computes it natively."""
    return "bf16" if native_bf16(device) else "fp32"


def fp32(device: torch.device) -> str:
    return "fp32"


def bf16(device: torch.device) -> str:
    return "bf16"


# train.precision -> the precision ("bf16" or "fp32") it resolves to on a device
PRECISIONS = {"auto": native_or_fp32, "fp32": fp32, "bf16": bf16}


def resolve_precision(preference: str, device: torch.device) -> str:
    """train.precision -> "bf16" or "fp32" on this device."""
    return look_up("train.precision", preference, PRECISIONS)(device)


def autocast(device: torch.device, precision: str | None = None):
    """bf16 autocast for precision "bf16"; by default (inference) bf16 on CUDA only and fp32 on a CPU."""
    precision = precision or ("bf16" if device.type == "cuda" else "fp32")
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def compute_fingerprint(device: torch.device, precision: str) -> dict:
    """What decides whether another machine reproduces this one's results bit for bit: the device kind, the
    precision train.precision resolved to, the kernels torch picked for this CPU (AVX2 and AVX512 builds of
    the same op may round differently) or the GPU's name, torch's version, and the BLAS kernel and threads
    numpy uses (the survival fits' last digits follow them)."""
    from threadpoolctl import threadpool_info

    kernels = torch.cuda.get_device_name(device) if device.type == "cuda" else torch.backends.cpu.get_cpu_capability()
    blas = [
        f"{pool['internal_api']} {pool.get('architecture') or '?'}, {pool['num_threads']} threads"
        for pool in threadpool_info()
        if pool["user_api"] == "blas"
    ]
    return {
        "device": device.type,
        "precision": precision,
        "kernels": kernels,
        "torch": torch.__version__,
        "blas": "; ".join(blas) or "none found",
    }


def make_deterministic(seed: int) -> None:
    """Same seed, same data, same machine -> the same weights (CPU; CUDA as far as it allows)."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
