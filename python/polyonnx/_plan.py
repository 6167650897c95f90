"""The verification plan as a value: which size sets and feeds a graph is run at, where each feed
set came from, and the dims' constraints it stays inside. Export builds one, every check runs it,
the summary prints it (``describe``) and the manifest records it (``dims_manifest``, ``sources``).

Pure numpy: no torch, no onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from ._dims import Dim, describe as describe_dim, plan_sizes
from .errors import PolyonnxError
from .feeds import make_feeds

SOURCES = ("example", "generated", "user", "test_data")


@dataclass(frozen=True)
class Run:
    """One feed set to verify at: the named dims' sizes, the feeds, and where they came from."""

    sizes: Mapping[str, int]
    feeds: Mapping[str, np.ndarray]
    source: str  # one of SOURCES


@dataclass(frozen=True)
class VerificationPlan:
    dims: Mapping[str, Dim]
    runs: tuple[Run, ...]

    @property
    def sizes(self) -> list[dict]:
        return [dict(r.sizes) for r in self.runs]

    @property
    def feeds(self) -> list[dict]:
        return [dict(r.feeds) for r in self.runs]

    @property
    def sources(self) -> dict[str, int]:
        """How many feed sets of each source (the manifest's export.feeds)."""
        out: dict[str, int] = {}
        for r in self.runs:
            out[r.source] = out.get(r.source, 0) + 1
        return out

    def without(self, indices) -> "VerificationPlan":
        drop = set(indices)
        return replace(self, runs=tuple(r for i, r in enumerate(self.runs) if i not in drop))

    def dims_manifest(self) -> dict:
        return {n: d.to_manifest([r.sizes[n] for r in self.runs if n in r.sizes]) for n, d in self.dims.items()}

    def describe(self) -> str:
        """One line for the export summary: the size sets, then every constraint with its origin."""
        text = f"{len(self.runs)} size sets: " + ", ".join(
            "{" + ", ".join(f"{k}={v}" for k, v in r.sizes.items()) + "}" for r in self.runs)
        constrained = [describe_dim(d) for d in self.dims.values()
                       if d.min > 1 or d.max is not None or d.multiple_of > 1]
        return text + (("; " + "; ".join(constrained)) if constrained else "")


def sizes_of(inputs: list[dict], feeds: Mapping[str, np.ndarray], *, stage: str = "export (feeds)") -> dict[str, int]:
    """The named dims' sizes in one given feed set, checked against the inputs' ranks and static axes
    (export's --feeds and verify's --inputs)."""
    sizes: dict[str, int] = {}
    for s in inputs:
        if s["name"] not in feeds:
            raise PolyonnxError(stage, f"a given feed set lacks input '{s['name']}' (it has {sorted(feeds)})",
                                f"give every input: {', '.join(x['name'] for x in inputs)}")
        shape = np.shape(feeds[s["name"]])
        if len(shape) != len(s["shape"]):
            raise PolyonnxError(stage, f"given input '{s['name']}' has shape {list(shape)}, the model's "
                                f"is {s['shape']}", "give arrays of the model's rank")
        for axis, d in enumerate(s["shape"]):
            if isinstance(d, int) and shape[axis] != d:
                raise PolyonnxError(stage, f"given input '{s['name']}' axis {axis} is {shape[axis]}, the "
                                    f"model fixes it to {d}", "give arrays of the model's shape")
            if isinstance(d, str) and sizes.setdefault(d, int(shape[axis])) != int(shape[axis]):
                raise PolyonnxError(stage, f"dim '{d}' has two sizes in one given feed set",
                                    "inputs that share a dim must agree on its size")
    return sizes


def relax(dims: Mapping[str, Dim], sizes: Mapping[str, int], why: str) -> dict[str, Dim]:
    """A size that really runs beats a discovered constraint (discovery assumes monotone acceptance;
    a feed that works proves otherwise). The user's constraints are kept."""
    out = dict(dims)
    for d, n in sizes.items():
        dim = out.get(d)
        if dim is None or dim.legal(n):
            continue
        origin = dict(dim.origin)
        lo, hi, m = dim.min, dim.max, dim.multiple_of
        if n < lo and not dim.given("min"):
            lo, origin["min"] = n, f"{n} {why}"
        if hi is not None and n > hi and not dim.given("max"):
            # No max any more: no origin for one either (the manifest would explain a bound it lacks).
            hi = None
            origin.pop("max", None)
        if m > 1 and n % m and not dim.given("multiple_of"):
            m = 1
            origin.pop("multiple_of", None)
        out[d] = replace(dim, min=lo, max=hi, multiple_of=m, origin=origin)
    return out


def make_plan(dims: Mapping[str, Dim], inputs: list[dict], *, example: Mapping | None = None,
              given=(), random_ok: bool = True, known_feeds=None) -> VerificationPlan:
    """Every size set of ``_dims.plan_sizes`` (the example feeds first when given, generated feeds for
    the rest), then each given (source, feeds) set as it is; constraints a given set contradicts are
    relaxed first. ``inputs`` are the manifest's input specs (feeds are drawn from their ranges).

    ``known_feeds(sizes)``: generated feeds the caller already ran at those sizes (a discovery
    probe), or None; reusing them lets the caller reuse that run's outputs as the reference."""
    given = list(given)
    for _, f in given:
        dims = relax(dims, sizes_of(inputs, f), "runs in the given feeds")
    runs = []
    if random_ok:
        for i, sizes in enumerate(plan_sizes(dict(dims))):
            if i == 0 and example is not None:
                runs.append(Run(dict(sizes), dict(example), "example"))
            else:
                known = known_feeds(sizes) if known_feeds else None
                runs.append(Run(dict(sizes), dict(known) if known is not None else make_feeds(inputs, sizes, seed=i),
                                "generated"))
    for src, f in given:
        runs.append(Run(sizes_of(inputs, f), dict(f), src))
    if not runs:
        raise PolyonnxError("export (plan)", "nothing to verify with: generated feeds do not run and none were given",
                            "give feeds (--feeds FILE.npz, feeds= in the API)")
    return VerificationPlan(dict(dims), tuple(runs))
