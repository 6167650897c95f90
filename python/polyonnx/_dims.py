"""Dim constraints as data: what sizes a named dynamic dim may take, where each bound came from,
how to find the bounds a model has, and which sizes to verify.

A size is legal when ``min <= size <= max`` and ``size % multiple_of == 0``. Sources, strongest
first: the user (``--dim height=64,min=32,multiple_of=32``), discovery (the model's own failures
at probe sizes: PyTorch for an export, ONNX Runtime for an import), defaults (min 1; 0 only when
the user says so, and then it is verified). Every runtime refuses an illegal size with the same
words (``size_problem`` here, ``dimProblem`` in js/feeds.mjs), before ONNX Runtime sees it.

Pure Python: no torch, no onnxruntime. Discovery takes a probe callable, so the same search runs
against PyTorch or ONNX Runtime.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from .errors import PolyonnxError, one_line

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONSTRAINT_KEYS = ("example", "min", "max", "multiple_of")
# Probes never go past this: a stride larger than this is taken as "only the example works".
_MAX_STRIDE = 1024
# Joint search for a first working size of an import: every free dim at each of these.
_SEARCH = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class Dim:
    """One named dynamic dim: its example size, its constraints and where each came from."""

    name: str
    example: int
    min: int = 1
    max: int | None = None
    multiple_of: int = 1
    origin: dict = field(default_factory=dict)  # constraint key -> 'user' | 'default' | 'discovered: ...'

    def given(self, key: str) -> bool:
        return self.origin.get(key) == "user"

    def problem(self, size: int) -> str | None:
        """Why ``size`` is illegal (the words every runtime uses), or None."""
        return size_problem(self.to_manifest([]), size)

    def legal(self, size: int) -> bool:
        return self.problem(size) is None

    def lowest(self) -> int:
        """The smallest legal size."""
        m = self.multiple_of
        return -(-self.min // m) * m

    def sizes_to_verify(self) -> list[int]:
        """At least three legal sizes when the constraints allow them: the minimum, the example, the
        next legal size, and a larger one that is not a multiple of the example (2*example + stride),
        each kept inside max. Never a size the constraints exclude."""
        m, e = self.multiple_of, self.example
        wanted = [self.lowest(), e, e + m, 2 * e + m]
        if self.max is not None:
            top = (self.max // m) * m
            wanted = [min(s, top) for s in wanted]
            if top <= 16 * max(e, 1):
                wanted.append(top)  # the largest legal size too, when it is within reach
        out = []
        for s in wanted:
            if self.legal(s) and s not in out:
                out.append(s)
        return sorted(out)

    def to_manifest(self, verified: list[int]) -> dict:
        entry = {"example": int(self.example), "verified": sorted({int(v) for v in verified}), "min": int(self.min)}
        if self.max is not None:
            entry["max"] = int(self.max)
        if self.multiple_of != 1:
            entry["multiple_of"] = int(self.multiple_of)
        origin = {k: v for k, v in self.origin.items() if k in CONSTRAINT_KEYS}
        if origin:
            entry["origin"] = origin
        return entry


def from_manifest(name: str, entry: dict) -> Dim:
    """The Dim a manifest ``dims`` entry describes (a missing min is 1)."""
    return Dim(name, int(entry["example"]), int(entry.get("min", 1)), entry.get("max"),
               int(entry.get("multiple_of", 1)), dict(entry.get("origin", {})))


def size_problem(entry: dict, size: int, name: str = "") -> str | None:
    """The shared rule, on a manifest ``dims`` entry: None when ``size`` is legal, else the reason.
    A missing min is 1: size 0 is legal only where the bundle says min 0 (zero-length axes crash some
    ONNX Runtime kernels, e.g. GRU, and export verifies 0 only when asked)."""
    lo = entry.get("min", 1)
    hi = entry.get("max")
    m = entry.get("multiple_of", 1)
    origin = entry.get("origin", {})

    def why(key):
        return f" ({origin[key]})" if origin.get(key) else ""

    if size < lo:
        return f"below its minimum {lo}{why('min')}"
    if hi is not None and size > hi:
        return f"above its maximum {hi}{why('max')}"
    if m > 1 and size % m:
        return f"not a multiple of {m}{why('multiple_of')}"
    return None


def legal_text(entry: dict) -> str:
    """'multiples of 32 from 32 to 2048', '1 to 512', '1 or more': the legal sizes, for a fix text."""
    lo, hi, m = entry.get("min", 1), entry.get("max"), entry.get("multiple_of", 1)
    if m > 1:
        first = -(-lo // m) * m
        return f"multiples of {m} from {first}" + (f" to {hi}" if hi is not None else "")
    return f"{lo} to {hi}" if hi is not None else f"{lo} or more"


# -- user input ----------------------------------------------------------------------------------
def parse_dim(text: str) -> tuple[str, dict]:
    """``height=64,min=32,multiple_of=32,max=2048`` -> ('height', {...}); ``batch=4`` is the example."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.match(name):
        raise PolyonnxError("export (spec)", f"cannot read --dim {text!r}",
                            "write it as NAME=SIZE[,min=N][,max=N][,multiple_of=N], e.g. --dim height=64,min=32,multiple_of=32")
    out: dict = {}
    for i, part in enumerate(p.strip() for p in rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            key, value = ("example" if i == 0 else key), key
        key = key.strip()
        if key not in CONSTRAINT_KEYS or not value.strip().isdigit():
            raise PolyonnxError("export (spec)", f"cannot read --dim {text!r}: {part!r} is not SIZE or KEY=N "
                                f"with KEY one of {', '.join(CONSTRAINT_KEYS)}",
                                "e.g. --dim height=64,min=32,multiple_of=32,max=2048")
        out[key] = int(value)
    return name, check_user_dim(name, out)


def check_user_dim(name: str, given) -> dict:
    """A user's dim entry (an int example, or a dict of CONSTRAINT_KEYS) checked for consistency."""
    if isinstance(given, bool) or not isinstance(given, (int, dict)):
        raise PolyonnxError("export (spec)", f"dim '{name}' is given as {given!r}",
                            "give an example size (an int) or a dict with example/min/max/multiple_of")
    spec = {"example": given} if isinstance(given, int) else dict(given)
    unknown = set(spec) - set(CONSTRAINT_KEYS)
    if unknown:
        raise PolyonnxError("export (spec)", f"dim '{name}' has unknown keys {sorted(unknown)}",
                            f"use {', '.join(CONSTRAINT_KEYS)}")
    for k, v in spec.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if k == "multiple_of" else 0):
            raise PolyonnxError("export (spec)", f"dim '{name}' {k}={v!r} is not a {'positive' if k == 'multiple_of' else 'non-negative'} integer",
                                f"give {k} as a whole number")
    if "min" in spec and "max" in spec and spec["min"] > spec["max"]:
        raise PolyonnxError("export (spec)", f"dim '{name}' has min {spec['min']} above max {spec['max']}",
                            "swap them, or drop one")
    if "example" in spec:
        probe = Dim(name, spec["example"], spec.get("min", 1 if spec["example"] else 0), spec.get("max"),
                    spec.get("multiple_of", 1))
        why = probe.problem(spec["example"])
        if why:
            raise PolyonnxError("export (spec)", f"dim '{name}' example size {spec['example']} is {why}",
                                "give an example size inside the constraints")
    return spec


def make_dim(name: str, example: int, given: dict | None) -> Dim:
    """A Dim from a user's spec (``check_user_dim``) over an example; unset constraints are defaults."""
    given = dict(given or {})
    origin = {k: "user" for k in given}
    ex = int(given.get("example", example))
    lo = given.get("min", 1)
    if "min" not in given:
        origin["min"] = "default"
    return Dim(name, ex, int(lo), given.get("max"), int(given.get("multiple_of", 1)), origin)


# -- discovery ------------------------------------------------------------------------------------
Probe = Callable[[dict], "str | None"]  # sizes of every dim -> None when the model runs, else its error


def discover(dims: dict[str, Dim], probe: Probe, where: str, *, on_probe=None,
             affordable: Callable[[dict], bool] | None = None, pin: bool = True,
             find_max: bool = True) -> dict[str, Dim]:
    """Find each dim's stride and minimum from the model's own failures, one dim at a time with the
    others at their example. ``where`` names the runtime for the origin text ('torch', 'onnxruntime').

    Only what the user did not give is searched. Acceptance is assumed monotone on the stride's
    lattice above the minimum (what conv stems, pooling and down/up-sampling give); the size just
    below the minimum is always probed, so the recorded reason is a real failure.
    """
    examples = {d.name: d.example for d in dims.values()}
    cache: dict[tuple, str | None] = {}

    def run(name: str, size: int) -> str | None:
        sizes = dict(examples, **{name: size})
        key = tuple(sorted(sizes.items()))
        if key not in cache:
            cache[key] = probe(sizes)
            if on_probe:
                on_probe(sizes, cache[key])
        return cache[key]

    def fits(name: str, size: int) -> bool:
        return affordable is None or affordable(dict(examples, **{name: size}))

    out = {}
    for name, dim in dims.items():
        found = _discover_one(dim, lambda s, n=name: run(n, s), where, pin)
        out[name] = _discover_max(found, lambda s, n=name: run(n, s), lambda s, n=name: fits(n, s), where) \
            if find_max else found
    return out


# Upward probes for a maximum: the example doubled while the inputs stay affordable, up to 16x the
# example or _MAX_PROBE_SIZE, whichever is larger (real position tables have 512, 1024, 2048 rows:
# a fixed 16x from a seq example of 16 missed BERT's 512), and while one probe stays cheap.
_MAX_PROBE_SIZE = 4096
_MAX_PROBE_SECONDS = 5.0


def _discover_max(dim: Dim, run, fits, where: str) -> Dim:
    """A maximum the model has (a position-embedding table of 512 rows: seq 513 fails) found by
    doubling the example, then bisecting between the last size that ran and the first that
    failed. Beyond what was probed nothing is claimed: no max is recorded."""
    if dim.max is not None or dim.given("max") or dim.example == 0:
        return dim
    m, e = dim.multiple_of, dim.example
    top = max(16 * e, _MAX_PROBE_SIZE)
    last_ok, fail = e, None
    factor = 2
    while True:
        size = (e * factor // m) * m
        if size <= last_ok or size > top or not fits(size):
            break
        started = time.perf_counter()
        err = run(size)
        if err is not None:
            fail = (size, err)
            break
        last_ok = size
        if time.perf_counter() - started > _MAX_PROBE_SECONDS:
            break  # the next, twice as large, would cost more than a probe should
        factor *= 2
    if fail is None:
        return dim
    lo_k, hi_k = _boundary(last_ok // m, fail[0] // m, m, run)  # lo_k runs, hi_k fails
    err = run(hi_k * m) or fail[1]
    origin = dict(dim.origin, max=f"discovered: {hi_k * m} fails in {where}: {one_line(err)}")
    return replace(dim, max=lo_k * m, origin=origin)


def _boundary(good: int, bad: int, m: int, run) -> tuple[int, int]:
    """Bisect on multiples of ``m`` between ``good * m`` (runs) and ``bad * m`` (fails), in either
    direction, to two neighbours: (the last k that runs, the first that fails)."""
    while abs(good - bad) > 1:
        mid = (good + bad) // 2
        if run(mid * m) is None:
            good = mid
        else:
            bad = mid
    return good, bad


def _discover_one(dim: Dim, run: Callable[[int], "str | None"], where: str, pin: bool = True) -> Dim:
    e = dim.example
    origin = dict(dim.origin)
    m = dim.multiple_of
    if not dim.given("multiple_of") and (dim.max is None or e + 1 <= dim.max):
        err = run(e + 1)
        if err is not None:
            m = None
            step = 2
            while step <= min(e, _MAX_STRIDE) and e % step == 0:
                if (dim.max is None or e + step <= dim.max) and run(e + step) is None:
                    m = step
                    break
                step *= 2
            if m is None:
                # Nothing above the example works: the dim accepts only its example size. An imported
                # graph that declares a dim dynamic but fixed it inside is recorded so (pin), not
                # refused; a dim the user declared dynamic for a trace is an error to fix at the source.
                if not pin:
                    raise PolyonnxError(
                        "export (dims)", f"dim '{dim.name}' is declared dynamic, but {where} runs only at its "
                        f"example size {e}: {e + 1} fails: {one_line(err)}",
                        f"declare it static (a number in --input, or leave it out of dynamic_axes), or look for a "
                        f".view({e}, ...) or a size computed in Python in forward()")
                text = f"discovered: only {e} works; {e + 1} fails in {where}: {one_line(err)}"
                origin.update(min=text, max=text)
                return replace(dim, min=e, max=e, multiple_of=1, origin=origin)
            origin["multiple_of"] = f"discovered: {e + 1} fails in {where}: {one_line(err)}"
    if dim.given("min"):
        return replace(dim, multiple_of=m, origin=origin)
    # Smallest k >= 1 with k*m accepted, by bisection on k in [1, e/m].
    first_err = run(m)
    if first_err is None:
        low = m
        if low > 1:
            origin["min"] = f"discovered: the stride {m} makes {low} the smallest size"
        return replace(dim, min=low if low > 1 else dim.min, multiple_of=m, origin=origin)
    hi_k, lo_k = _boundary(e // m, 1, m, run)  # hi_k runs, lo_k fails
    below = lo_k * m
    err = run(below) if below > 0 else first_err
    origin["min"] = f"discovered: {below} fails in {where}: {one_line(err or first_err)}"
    return replace(dim, min=hi_k * m, multiple_of=m, origin=origin)


def first_working(dims: dict[str, Dim], probe: Probe, *, limit_elements: int = 1 << 24) -> dict[str, int] | None:
    """For an import whose default example sizes fail: the first joint size (all free dims at 2, 4,
    8, ... 1024) the model runs at. None when no size works (the failure is then not about sizes:
    indices, shape tensors...). ``lower`` then brings each dim back towards its default."""
    free = [n for n, d in dims.items() if not d.given("example")]
    base = {n: d.example for n, d in dims.items()}
    for s in _SEARCH:
        sizes = dict(base, **{n: max(s, dims[n].lowest()) for n in free})
        if _elements(sizes) > limit_elements:
            break
        if probe(sizes) is None:
            return sizes
    return None


def lower(sizes: dict[str, int], defaults: dict[str, int], probe: Probe) -> dict[str, int]:
    """Each dim back to its default size where the model still runs with the others as they are."""
    for n, d in defaults.items():
        if n in sizes and sizes[n] != d:
            trial = dict(sizes, **{n: d})
            if probe(trial) is None:
                sizes = trial
    return sizes


def find_ties(dims: dict[str, Dim], probe: Probe) -> list[list[str]]:
    """Dims of an import that run only when equal: each fails alone one step above its example but
    runs when moved together with another of the same example (an RNN's state batch and its input
    batch, written as two anonymous dims). Steps of 1, 2, 4, ... are tried, so tied dims with a
    stride are found too. Returns groups of names, the first of each the one to keep."""
    examples = {n: d.example for n, d in dims.items()}
    free = [n for n, d in dims.items() if not d.given("example") and not d.given("multiple_of")]
    alone = [n for n in free if probe(dict(examples, **{n: examples[n] + 1})) is not None]
    parent = {n: n for n in alone}

    def root(n):
        while parent[n] != n:
            n = parent[n]
        return n

    for i, a in enumerate(alone):
        for b in alone[i + 1:]:
            if examples[a] != examples[b] or root(a) == root(b):
                continue
            e, step = examples[a], 1
            while step <= min(max(e, 1), _MAX_STRIDE):
                if probe(dict(examples, **{a: e + step, b: e + step})) is None:
                    # A stride lets each move alone by this step (H and W multiples of 32); a tie doesn't.
                    if (probe(dict(examples, **{a: e + step})) is not None
                            and probe(dict(examples, **{b: e + step})) is not None):
                        parent[root(b)] = root(a)
                    break
                if e % (step * 2):
                    break
                step *= 2
    groups: dict[str, list[str]] = {}
    for n in alone:
        groups.setdefault(root(n), []).append(n)
    return [g for g in groups.values() if len(g) > 1]


def _elements(sizes: dict) -> int:
    n = 1
    for v in sizes.values():
        n *= max(int(v), 1)
    return n


# -- the verification plan ---------------------------------------------------------------------------
def plan_sizes(dims: dict[str, Dim]) -> list[dict]:
    """Size sets to verify at: the examples; then each dim at each of its other verification sizes
    with the rest at their example; then every dim one stride above its example together. A size the
    constraints exclude is never in the plan."""
    example = {n: d.example for n, d in dims.items()}
    plans = [dict(example)]
    for n, d in dims.items():
        for s in d.sizes_to_verify():
            p = dict(example, **{n: s})
            if p not in plans:
                plans.append(p)
    together = {n: d.example + d.multiple_of for n, d in dims.items()}
    if dims and all(dims[n].legal(s) for n, s in together.items()) and together not in plans:
        plans.append(together)
    return plans


def describe(dim: Dim) -> str:
    """'min 32 (discovered: ...), multiple of 32 (user)' for the export summary."""
    parts = [f"example {dim.example}"]
    parts.append(f"min {dim.min}" + (f" ({dim.origin['min']})" if dim.origin.get("min") not in (None, "default") else ""))
    if dim.max is not None:
        parts.append(f"max {dim.max}" + (f" ({dim.origin['max']})" if dim.origin.get("max") else ""))
    if dim.multiple_of != 1:
        parts.append(f"multiple of {dim.multiple_of}" + (f" ({dim.origin['multiple_of']})" if dim.origin.get("multiple_of") else ""))
    return f"{dim.name}: " + ", ".join(parts)
