"""ONNX Runtime (Python): sessions, runs and offline graph optimization.

The one module of polyonnx that imports onnxruntime (quantization lives in _quantize.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from .errors import PolyonnxError

# Offline optimization levels polyonnx ships. LAYOUT/ALL are deliberately absent: they rewrite
# convolutions to com.microsoft.nchwc ops tied to the CPU, which onnxruntime-web cannot run.
LEVELS = {
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
}


# Sessions that only *run* a graph may use ALL, ONNX Runtime's default and what users' sessions get:
# latency is measured there (after probe_load has shown the graph survives that level).
RUN_LEVELS = dict(LEVELS, all=ort.GraphOptimizationLevel.ORT_ENABLE_ALL)


def version() -> str:
    return ort.__version__


def available_providers() -> list[str]:
    """This onnxruntime build's execution providers, by its own names (CUDAExecutionProvider...)."""
    return list(ort.get_available_providers())


def session(model, *, threads: int | None = None, level: str = "basic", stage: str = "verify",
            quiet: bool = False, providers=("CPUExecutionProvider",)) -> ort.InferenceSession:
    """A session (CPU unless ``providers`` says otherwise, by ONNX Runtime's names) on a path or
    model bytes; load failures become a PolyonnxError. ``quiet``: no log lines at all, for probing
    sizes where failures are expected and come back as exceptions."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = RUN_LEVELS[level]
    opts.log_severity_level = 4 if quiet else 3  # errors only: warnings about output shapes are checked by us
    if threads:
        opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(model) if isinstance(model, Path) else model, opts,
                                    providers=list(providers))
    except Exception as e:
        raise PolyonnxError(stage, f"ONNX Runtime {ort.__version__} cannot load the model: {_short(e)}",
                            "check the opset and operators; re-export with --opset 20") from e


def run(sess: ort.InferenceSession, feeds: dict, output_names: list[str] | None = None, *, stage: str = "verify"):
    try:
        outs = sess.run(output_names, {k: np.ascontiguousarray(v) for k, v in feeds.items()})
    except Exception as e:
        shapes = {k: list(np.shape(v)) for k, v in feeds.items()}
        raise PolyonnxError(stage, f"ONNX Runtime failed to run the model on inputs {shapes}: {_short(e)}",
                            "a dim the graph treats as fixed was given another size; see the export attempts") from e
    names = output_names or [o.name for o in sess.get_outputs()]
    return dict(zip(names, outs))


def optimize(src: Path, dst: Path, level: str) -> None:
    """Write ``src`` optimized offline at ``level`` (basic: constant folding, redundant nodes;
    extended: + com.microsoft fusions) to ``dst``."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = LEVELS[level]
    opts.optimized_model_filepath = str(dst)
    opts.log_severity_level = 3
    from ._external import optimized_model_config  # weights over 2 GB go to <dst>.data (#13 part 4)

    for key, value in optimized_model_config(Path(src), Path(dst)).items():
        opts.add_session_config_entry(key, value)
    try:
        ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise PolyonnxError("optimize", f"ONNX Runtime could not optimize the model at level '{level}': {_short(e)}",
                            "retry with --optimize none") from e


_PROBE = """
import sys, onnxruntime as ort
opts = ort.SessionOptions()
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
opts.log_severity_level = 3
ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
"""


def probe_load(path: Path, timeout: float = 120.0) -> str | None:
    """Load ``path`` at ONNX Runtime's default level (ALL) in a child process; None if it loads.

    Users' sessions default to ORT_ENABLE_ALL (Python) and 'all' (onnxruntime-node), and some
    graphs crash the runtime there: an fp16 conversion of our GRU example segfaults ORT 1.32
    and onnxruntime-node 1.30 at that level while loading fine at BASIC. A crash in a child
    process is a finding; in this process it would end the export.
    """
    import signal
    import subprocess
    import sys

    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"ONNX Runtime {ort.__version__} did not finish loading it within {timeout:.0f} s"
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        return f"ONNX Runtime {ort.__version__} crashes ({name}) loading it at its default optimization level (ALL)"
    last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
    return f"ONNX Runtime {ort.__version__} cannot load it at its default optimization level: {_short(Exception(last))}"


def _short(e: BaseException, limit: int = 300) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit] + " ..."
