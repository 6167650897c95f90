"""Stage 1 of an export: capture a graph and prove it gives its reference's answers.

For a PyTorch model: find each dim's constraints from the model's own failures, plan the sizes to
verify inside them, export with each exporter in turn (each attempt a ``Capture`` value), and,
when no graph is right everywhere, the sizes where one is right. For an ``.onnx``: read its
interface, upgrade removed operator versions, tell tied and strided dims apart with ONNX Runtime,
and take the graph as given as the reference. Either way the result is a frozen ``Graph``:
the verified file, its interface, the verification plan and the reference outputs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from ._dims import Dim, describe, discover, find_ties, first_working, lower, make_dim
from ._plan import VerificationPlan, make_plan, sizes_of
from ._progress import Steps
from ._spec import ExportSpec, InputSpec, apply_range, check_example_size, from_declared, parse_input
from .compare import accumulate, compare_outputs, tolerance
from .errors import PolyonnxError, VerificationError, one_line
from .feeds import make_feeds

DEFAULT_EXAMPLE = 2  # exporters specialize 0 and 1 (see _spec.check_example_size)
IMPORT_EXAMPLE = 64  # an imported graph's non-leading dims start here (see _import_inputs)


@dataclass(frozen=True)
class Capture:
    """The result of one exporter strategy (torch's _capture_strategies return values, not raises)."""

    strategy: str
    path: Path | None
    reason: str | None
    seconds: float
    ran: bool = False  # the graph was well-formed and ran, but not right at every planned size

    @property
    def ok(self) -> bool:
        return self.reason is None

    def record(self) -> dict:
        """The manifest's export.attempts entry."""
        rec = {"strategy": self.strategy, "ok": self.ok, "seconds": self.seconds}
        if self.reason is not None:
            rec["reason"] = self.reason
        return rec


@dataclass(frozen=True)
class Graph:
    """Stage 1's result: a graph file that gives its reference's answers on ``plan``."""

    name: str | None
    description: str | None
    spec: ExportSpec
    plan: VerificationPlan
    references: tuple  # per run of the plan: output name -> array (PyTorch's, or the source graph's)
    output_specs: tuple
    derived_dims: Mapping
    path: Path
    strategy: str  # dynamo | legacy | onnx-import
    attempts: tuple
    upgrade: dict | None
    versions: Mapping
    declared: Mapping  # the model's polyonnx_spec ({} for an import)
    torch_model: object  # None for an import
    notes: tuple

    @property
    def dims(self) -> Mapping[str, Dim]:
        return self.plan.dims

    def input_manifest(self) -> list[dict]:
        return [s.to_manifest() for s in self.spec.inputs]

    def dims_manifest(self) -> dict:
        return {**self.plan.dims_manifest(), **self.derived_dims}


class _Capturer:
    """Stage 1 while it runs: the spec, the dims and the plan are refined probe by probe (and a
    narrowed plan replaces the references), so this part keeps state; what leaves it is a frozen
    ``Graph``."""

    def __init__(self, *, steps: Steps, opset: int, tmp: Path, strategies=None, given_sets=()):
        self.steps, self.opset, self.tmp = steps, opset, tmp
        self.strategies = strategies
        self.given_sets: list[tuple[str, dict]] = list(given_sets)  # (source, feeds) the caller gave
        self.notes: list[str] = []
        self.attempts: list[dict] = []
        self.name = None
        self.description = None
        self.torch_model = None
        self.versions = {"torch": None, "onnxscript": None}
        self.upgrade = None  # export.upgrade of an imported graph with removed operator versions
        self.dims: dict[str, Dim] = {}
        self._ran: dict[tuple, tuple] = {}  # sizes -> (feeds, PyTorch outputs, bytes): see _keep_run
        self._ran_bytes = 0
        self.plan: VerificationPlan | None = None
        self.torch_check = None

    def graph(self) -> "Graph":
        return Graph(
            name=self.name, description=self.description, spec=self.spec, plan=self.plan,
            references=tuple(self.references), output_specs=tuple(self.output_specs),
            derived_dims=dict(self.derived_dims), path=self.raw_path, strategy=self.strategy,
            attempts=tuple(self.attempts), upgrade=self.upgrade, versions=dict(self.versions),
            declared=dict(self.declared), torch_model=self.torch_model, notes=tuple(self.notes))

    # -- stage 1: trace (torch) ----------------------------------------------------------------
    def trace_torch(self, model, example_inputs, input_names, output_names, dynamic_axes, inputs, dims,
                    value_ranges, class_axes, allow_pickle) -> dict:
        with self.steps.step("load the model and run it in PyTorch") as st:
            from . import _export as tx

            if isinstance(model, (str, Path)):
                self.name = str(model).rpartition(":")[2].rpartition("/")[2].removesuffix(".pt").removesuffix(".pth")
                model = tx.resolve_model(str(model), allow_pickle=allow_pickle)
            self.versions = tx.versions()
            declared = tx.declared_spec(model) or {}
            if not self.name:
                self.name = type(model).__name__
            if example_inputs is not None:
                spec, feeds = tx.spec_from_examples(model, example_inputs, input_names, dynamic_axes)
                # The model's own declarations still name outputs and class axes.
                spec.class_axes.update(declared.get("class_axes", {}))
                spec.output_names = list(declared["outputs"]) if declared.get("outputs") else None
                spec.description = declared.get("description")
                examples_given = True
            else:
                if inputs:
                    spec = ExportSpec(inputs=[parse_input(s) for s in inputs])
                elif declared:
                    spec = from_declared(declared)
                else:
                    raise PolyonnxError(
                        "export (spec)", f"no inputs are known for model '{self.name}'",
                        "pass --input 'NAME:DTYPE[DIMS]' (e.g. --input 'x:float32[batch,3]'), give example_inputs, "
                        "or declare polyonnx_spec on the model (README: 'Declaring inputs on the model')",
                    )
                examples_given = False
            # The user's dims and ranges apply whether or not example inputs were given.
            _apply_user_dims(spec, dims, examples_fixed=examples_given)
            _apply_user_ranges(spec, value_ranges)
            if not examples_given:
                feeds = tx.example_feeds(spec, model)
            spec.class_axes.update(class_axes)
            spec.output_names = list(output_names) if output_names else spec.output_names
            self.description = spec.description or declared.get("description")
            self.spec, self.torch_model, self.declared = spec, model, declared
            self.input_names = [s.name for s in spec.inputs]

            # Constraints: the user's, then the model's own failures at probe sizes in PyTorch.
            self.dims = {d: make_dim(d, spec.dims[d], spec.dim_given.get(d)) for d in spec.dim_names()}
            inputs_now = self.input_manifest()

            def probe(sizes):
                f = make_feeds(inputs_now, sizes, seed=101)
                try:
                    self._keep_run(sizes, f, tx.torch_outputs(model, f, self.input_names))
                    return None
                except Exception as e:  # the model's own error is the discovered reason
                    return tx.condense(e, 240)

            try:  # the example first: a model that fails there is wrong about its inputs, not its sizes
                self._keep_run(dict(spec.dims), feeds, tx.torch_outputs(model, feeds, self.input_names))
            except Exception as e:
                shapes = {k: list(np.shape(v)) for k, v in feeds.items()}
                raise PolyonnxError("export (torch)", f"the model itself fails on the example inputs (input shapes "
                                    f"{shapes}): {tx.condense(e, 300)}",
                                    "check the --input shapes and static dims against what forward() expects") from e
            self.dims = discover(self.dims, probe, "torch", affordable=self._affordable, pin=False)
            self.example_feeds = feeds
            self._set_plan(example=feeds, given=self.given_sets)
            # PyTorch's answers at every size set are the reference for both exporters (a run the
            # probes or the example already made on the plan's own feeds is not made again).
            self.references = self._torch_references()
            self._ran.clear()
            self._ran_bytes = 0
            n_out = len(self.references[0])
            if spec.output_names is None:
                spec.output_names = ["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]
            if len(spec.output_names) != n_out:
                raise PolyonnxError("export (spec)", f"the model returns {n_out} outputs but {len(spec.output_names)} "
                                    f"output names were given ({spec.output_names})", "give one name per output")
            self.references = [dict(zip(spec.output_names, r)) for r in self.references]
            self.output_specs = self._derive_outputs()
            st["result"] = self._plan_text()

        from . import _export as tx

        captures = []
        for strategy in self.strategies or tx.STRATEGIES:
            with self.steps.step(f"export with the {strategy} exporter and verify against PyTorch") as st:
                capture = self._capture(strategy)
                self.attempts.append(capture.record())
                st["result"] = "passed" if capture.ok else f"rejected: {capture.reason}"
            captures.append(capture)
            if capture.ok:
                break
        else:
            for failed in [c for c in captures if c.ran]:
                with self.steps.step(f"find the sizes where the {failed.strategy} graph is right") as st:
                    capture = self._narrow(failed)
                    st["result"] = ("passed inside narrower constraints: " + self._plan_text()
                                    if capture.ok else "no narrower constraints make it right")
                if capture.ok:
                    self.attempts.append({**capture.record(), "strategy": failed.strategy})
                    break
        if capture.ok:
            self.strategy = capture.strategy
            self.raw_path = capture.path
        if not capture.ok:
            lines = "; ".join(f"{a['strategy']}: {a['reason']}" for a in self.attempts if not a["ok"])
            raise VerificationError(
                "export (verify)", f"no exporter produced a graph that works at every declared size ({lines})",
                "if a dim cannot really vary, declare it static (a number in --input); otherwise look for "
                "size-dependent Python control flow or .view(<constant>) in forward()",
                details={"attempts": self.attempts},
            )
        return declared

    # PyTorch runs kept for the plan: discovery probes and the example run already computed the
    # outputs at some of the plan's sizes. Bounded per run (a probe at a large size is not held)
    # and in all (discovery doubles each dim up to 4096 and bisects: dozens of probes per dim).
    _KEEP_BYTES = 64 << 20
    _KEEP_TOTAL_BYTES = 256 << 20

    def _keep_run(self, sizes: dict, feeds: dict, outputs: list) -> None:
        size = sum(np.asarray(o).nbytes for o in outputs) + sum(np.asarray(v).nbytes for v in feeds.values())
        key = tuple(sorted(sizes.items()))
        held = self._ran_bytes - self._ran.get(key, (None, None, 0))[2]
        if size <= self._KEEP_BYTES and held + size <= self._KEEP_TOTAL_BYTES:
            self._ran[key] = (feeds, outputs, size)
            self._ran_bytes = held + size

    def _known_feeds(self, sizes: dict):
        kept = self._ran.get(tuple(sorted(sizes.items())))
        return kept[0] if kept else None

    def _affordable(self, sizes: dict) -> bool:
        """Whether probing at ``sizes`` stays cheap: all inputs together at most 8M elements."""
        total = 0
        for spec in self.spec.inputs:
            n = 1
            for d in spec.shape:
                n *= int(sizes.get(d, 1)) if isinstance(d, str) else int(d)
            total += n
        return total <= 1 << 23

    def _torch_references(self) -> list:
        """PyTorch's outputs at every run of the plan (a list per run, in the model's output order)."""
        from . import _export as tx

        refs = []
        for plan, f, src in zip(self.plans, self.plan_feeds, self.plan_sources):
            kept = self._ran.get(tuple(sorted(plan.items())))
            if kept is not None and kept[0].keys() == f.keys() and all(kept[0][k] is f[k] for k in f):
                refs.append(kept[1])  # these very arrays already ran in PyTorch (a probe, or the example)
                continue
            try:
                refs.append(tx.torch_outputs(self.torch_model, f, self.input_names))
            except PolyonnxError:
                raise
            except Exception as e:
                shapes = {k: list(v.shape) for k, v in f.items()}
                first = "the example inputs" if src == "example" else (
                    "a given feed set" if src != "generated" else f"sizes {plan}")
                raise PolyonnxError(
                    "export (torch)", f"the model itself fails on {first} (input shapes {shapes}): "
                    f"{tx.condense(e, 300)}",
                    "check the --input shapes and static dims against what forward() expects"
                    if src != "generated" else
                    "the model does not accept these sizes: give the dim's constraints with --dim "
                    "NAME=SIZE,min=N,multiple_of=N (dims= in the API), or declare it static",
                ) from e
        return refs

    def _narrow(self, capture: "Capture") -> "Capture":
        """When no exporter's graph is right at every planned size, find the sizes where this one
        is: the same discovery, with 'the graph gives PyTorch's answers' as the probe (a padding or
        window computed at trace time makes a graph right only on a stride PyTorch itself does not
        need). Constraints only narrow; the narrowed plan is verified from scratch."""
        from . import _export as tx
        from . import _ort

        sess = _ort.session(capture.path, quiet=True, stage="export (verify)")
        names = self.spec.output_names
        tol = tolerance("fp32", "torch")

        def probe(sizes):
            feeds = make_feeds(self.input_manifest(), sizes, seed=101)
            try:
                ref = dict(zip(names, tx.torch_outputs(self.torch_model, feeds, self.input_names)))
            except Exception as e:
                return tx.condense(e, 240)
            try:
                got = _ort.run(sess, feeds, names, stage="export (verify)")
            except PolyonnxError as e:
                return _ort_reason(e.message)
            res, ok = compare_outputs(got, ref, self.output_specs, tol)
            if ok:
                return None
            bad = next(n for n, m in res.items() if not m["passed"])
            m = res[bad]
            return (f"output '{bad}' differs from PyTorch" if "shape_mismatch" in m else
                    f"output '{bad}' differs from PyTorch (max_abs {m['max_abs']:.3g}, cosine {m['cosine']:.6f})")

        if probe({d: x.example for d, x in self.dims.items()}) is not None:
            return capture
        before = dict(self.dims)
        try:
            self.dims = discover(self.dims, probe, f"the {capture.strategy} graph", affordable=self._affordable,
                                 pin=False)
        except PolyonnxError:  # right at its example only: no narrower constraints help
            return capture
        if self.dims == before:
            return capture
        self._set_plan(example=self.example_feeds, given=self.given_sets)
        self.references = [dict(zip(names, r)) for r in self._torch_references()]
        self.output_specs = self._derive_outputs()
        t0 = time.perf_counter()
        try:
            reason, _ = self._check_candidate(capture.path)
        except PolyonnxError as e:
            reason = e.message
        if reason is not None:
            self.dims = before
            self._set_plan(example=self.example_feeds, given=self.given_sets)
            self.references = [dict(zip(names, r)) for r in self._torch_references()]
            self.output_specs = self._derive_outputs()
            return capture
        changed = [describe(self.dims[d]) for d in self.dims if self.dims[d] != before[d]]
        self.notes.append(f"the {capture.strategy} graph is right only inside narrower constraints: " + "; ".join(changed))
        return Capture(capture.strategy, capture.path, None, round(capture.seconds + time.perf_counter() - t0, 2))

    def _save_with_shapes(self, model, shapes: dict, path: Path) -> None:
        """Save ``model`` with its io shapes named as the manifest names them (metadata only). Some
        graphs' nested If branches fail ONNX Runtime's type inference once an input dim is pinned or
        renamed (silero-vad): those keep the graph's own io shapes, and the manifest and every
        runtime's feed check still enforce the manifest's."""
        from . import _graph, _ort

        named = _graph.copy(model)
        _graph.set_io_shapes(named, shapes)
        _graph.save(named, path)
        try:
            # Both levels: a pinned size can pass at 'none' and break constant folding at 'basic',
            # which verification and optimization use.
            for level in ("none", "basic"):
                _ort.session(path, level=level, stage="export (import)", quiet=True)
        except PolyonnxError as e:
            _graph.save(model, path)
            _ort.session(path, level="none", stage="export (import)", quiet=True)  # as given, it must load
            self.notes.append(f"the graph keeps its own input/output shapes: with the manifest's, ONNX Runtime "
                              f"refuses it ({one_line(e.message, 200)})")

    def _tie(self, groups: list[list[str]]) -> None:
        """Merge dims found to run only when equal into the first of each group, in the input specs
        and the constraints, with the reason in the kept dim's origin."""
        for keep, *others in groups:
            rename = {o: keep for o in others}
            for spec in self.spec.inputs:
                spec.shape = [rename.get(d, d) if isinstance(d, str) else d for d in spec.shape]
            for o in others:
                self.dims.pop(o, None)
                self.spec.dims.pop(o, None)
            dim = self.dims[keep]
            origin = dict(dim.origin, example=f"discovered: tied with {', '.join(others)} (they run in onnxruntime "
                                              "only when equal)")
            self.dims[keep] = replace(dim, origin=origin)
            self.notes.append(f"dims {keep} and {', '.join(others)} run only when equal: they are one dim, '{keep}'")

    def _capture(self, strategy: str) -> "Capture":
        """One exporter's attempt as a value: the graph, or why it lost (the exporters raise anything;
        it is condensed into the reason rather than propagated, so the next strategy can run)."""
        from . import _export as tx

        t0 = time.perf_counter()
        path = self.tmp / f"{strategy}.onnx"
        ran = False
        try:
            tx.export_with(strategy, self.torch_model, self.spec, self.plan_feeds[0], self.spec.output_names,
                           self.opset, path)
            reason, ran = self._check_candidate(path)
        except PolyonnxError as e:
            reason = e.message
        except Exception as e:
            reason = f"export failed: {tx.condense(e)}"
        return Capture(strategy, path if (reason is None or ran) else None, reason,
                       round(time.perf_counter() - t0, 2), ran)

    def _set_plan(self, example: dict | None = None, given=(), random_ok: bool = True) -> None:
        self.plan = make_plan(self.dims, self.input_manifest(), example=example, given=given, random_ok=random_ok,
                              known_feeds=self._known_feeds)
        self.dims = dict(self.plan.dims)

    # The plan's views, by the names autoquant and the checks read.
    @property
    def plans(self) -> list[dict]:
        return self.plan.sizes

    @property
    def plan_feeds(self) -> list[dict]:
        return self.plan.feeds

    @property
    def plan_sources(self) -> list[str]:
        return [r.source for r in self.plan.runs]

    def _plan_text(self) -> str:
        return self.plan.describe()

    def input_manifest(self) -> list[dict]:
        return [s.to_manifest() for s in self.spec.inputs]

    def _derive_outputs(self, graph=None) -> list[dict]:
        """Output shapes from the reference runs: static where every run agrees (and the graph, when
        given, does not call the axis symbolic), a dim name where the axis follows one input dim, a
        derived dim otherwise. The same dim model as the inputs, checked against every verified run."""
        from . import _graph
        from .feeds import dtype_name

        specs = []
        self.derived_dims = {}
        plans = self.plans  # one list: the property builds a new one per call
        declared = {}
        if graph is not None:
            declared = {n: dims for n, _, dims in _graph.io_shapes(graph, "outputs")}
        for oname in self.spec.output_names:
            shapes = [r[oname].shape for r in self.references]
            ranks = {len(s) for s in shapes}
            if len(ranks) != 1:
                raise PolyonnxError("export (torch)", f"output '{oname}' changes rank with input sizes {shapes}",
                                    "outputs must keep their rank")
            rank = ranks.pop()
            graph_dims = declared.get(oname) or [None] * rank
            if len(graph_dims) != rank:
                graph_dims = [None] * rank
            shape = []
            for axis in range(rank):
                sizes = [s[axis] for s in shapes]
                follows = [d for d in self.spec.dims if all(p.get(d) == n for p, n in zip(plans, sizes))]
                if len(set(sizes)) == 1 and (graph is None or isinstance(graph_dims[axis], int) or not follows):
                    symbolic = graph is not None and not isinstance(graph_dims[axis], int)
                    if not symbolic:
                        shape.append(int(sizes[0]))
                        continue
                elif follows:
                    shape.append(follows[0])
                    continue
                dname = _graph.sanitize_dim(f"{oname}_dim{axis}", f"output{len(specs)}_dim{axis}")
                self.derived_dims[dname] = {"example": int(sizes[0]), "verified": sorted(set(int(n) for n in sizes)),
                                            "derived": True}
                shape.append(dname)
            spec = {"name": oname, "dtype": dtype_name(self.references[0][oname].dtype), "shape": shape}
            if oname in self.spec.class_axes:
                spec["class_axis"] = int(self.spec.class_axes[oname])
            specs.append(spec)
        unknown = set(self.spec.class_axes) - set(self.spec.output_names)
        if unknown:
            raise PolyonnxError("export (spec)", f"class axes given for unknown outputs {sorted(unknown)}",
                                f"the outputs are {self.spec.output_names}")
        return specs

    def _check_candidate(self, path: Path) -> tuple[str | None, bool]:
        """(None, True) if the graph at ``path`` is good, else (why not, whether it got as far as
        running: a graph that runs but is wrong at some sizes may be right inside narrower
        constraints). Also tidies its io metadata."""
        from . import _graph

        model = _graph.load(path)
        graph_inputs = {n: dims for n, _, dims in _graph.io_shapes(model, "inputs")}
        for s in self.spec.inputs:
            dims = graph_inputs.get(s.name)
            if dims is None:
                return f"the graph has no input '{s.name}' (it has {sorted(graph_inputs)})", False
            for axis, want in enumerate(s.shape):
                got = dims[axis] if axis < len(dims) else None
                if isinstance(want, str) and isinstance(got, int):
                    return (f"input '{s.name}' declared dim '{want}' is dynamic, but the graph fixed axis {axis} "
                            f"to {got}"), False
        graph_outputs = {n: dims for n, _, dims in _graph.io_shapes(model, "outputs")}
        for o in self.output_specs:
            dims = graph_outputs.get(o["name"])
            if dims is None:
                return f"the graph has no output '{o['name']}' (it has {sorted(graph_outputs)})", False
            for axis, want in enumerate(o["shape"]):
                got = dims[axis] if axis < len(dims) else None
                if isinstance(want, str) and isinstance(got, int):
                    sizes = sorted({int(r[o['name']].shape[axis]) for r in self.references})
                    return (f"output '{o['name']}' axis {axis} follows '{want}' (sizes {sizes} in PyTorch), "
                            f"but the graph fixed it to {got}"), False
        self._bound_indices(model, negative=False)
        # Name the graph's symbolic dims as the manifest does (metadata only).
        _graph.set_io_shapes(model, {s.name: s.shape for s in self.spec.inputs} |
                             {o["name"]: o["shape"] for o in self.output_specs})
        _graph.save(model, path)
        check, _ = run_check(self.plan, self.output_specs, path, "torch", "fp32", reference_outputs=self.references)
        if not check["passed"]:
            return failure_text(check), True
        self.torch_check = check
        return None, True

    def _bound_indices(self, model, *, negative: bool) -> None:
        """Integer inputs that index a constant table get the bound the graph proves, unless the
        user gave one. Imports keep ONNX's negative indices ([-rows, rows-1], what ORT runs);
        a torch export allows [0, rows-1], what nn.Embedding accepts."""
        from . import _graph

        for name, (rows, why) in _graph.index_bounds(model).items():
            spec = next((s for s in self.spec.inputs if s.name == name), None)
            if spec is None or spec.value_range_origin == "user":
                continue
            spec.value_range = [-rows if negative else 0, rows - 1]
            spec.value_range_origin = why
            if spec.verified_range is None or spec.verified_range[1] > rows - 1 or spec.verified_range[0] < -rows:
                spec.verified_range = [0, rows - 1]

    # -- stage 1 (alternative): import an existing .onnx ----------------------------------------
    def import_onnx(self, path: Path, user_inputs: list[str] | None, dims: dict, value_ranges: dict,
                    class_axes: dict) -> None:
        from . import _graph, _ort, _upgrade

        with self.steps.step(f"import {path}") as st:
            if not path.is_file():
                raise PolyonnxError("export (import)", f"no such file '{path}'", "check the .onnx path")
            model = _graph.load(path, stage="export (import)")
            self.name = path.stem if path.stem != "model" else path.parent.name or path.stem
            dropped = _graph.normalize_inputs(model)
            if dropped:
                self.notes.append(f"{len(dropped)} initializers were listed among the graph inputs (old IR); "
                                  "they are weights, not inputs, and were dropped from the inputs")
            test_sets = _test_data_sets(path, model)
            given = list(self.given_sets) + [("test_data", f) for f in test_sets]
            original = model
            model, self.upgrade = _upgrade.load_for_ort(model, [f for _, f in given])
            if self.upgrade:
                self.notes.append(f"upgraded from opset {self.upgrade['from_opset']} to {self.upgrade['to_opset']}: "
                                  f"{self.upgrade['reason']}; checked against onnx's reference evaluator")
            inputs, all_dims = _import_inputs(model, user_inputs)
            self.spec = ExportSpec(inputs=inputs, dims=all_dims, class_axes=dict(class_axes))
            # The same rule as a PyTorch export's: a range for an input the graph lacks is an error.
            _apply_user_ranges(self.spec, value_ranges)
            self._bound_indices(model, negative=True)
            arbitrary = []
            for spec in inputs:
                if spec.verified_range is None and spec.value_range is None and spec.dtype.startswith(("int", "uint")):
                    spec.verified_range = [0, 9]
                    arbitrary.append(spec.name)
                    self.notes.append(f"input '{spec.name}' is integer with no range the graph proves: verified with "
                                      "values 0..9 (give --range or --feeds for other values)")
            self.spec.output_names = [n for n, _, _ in _graph.io_shapes(model, "outputs")]
            self.input_names = [s.name for s in inputs]
            pins = {s.name: s.shape for s in inputs}
            source = self.tmp / "source.onnx"
            self._save_with_shapes(model, pins, source)
            sess = _ort.session(source, level="none", stage="export (import)", quiet=True)
            outputs = self.spec.output_names

            seen: dict[tuple, str | None] = {}

            def probe(sizes):
                key = tuple(sorted(sizes.items()))
                if key not in seen:
                    try:
                        _ort.run(sess, make_feeds(self.input_manifest(), sizes, seed=101), outputs,
                                 stage="export (import)")
                        seen[key] = None
                    except PolyonnxError as e:
                        seen[key] = _ort_reason(e.message)
                return seen[key]

            # Example sizes: the given feeds' sizes, else the user's, else 2 (moved up until the graph runs).
            if given:
                for d, n in sizes_of(self.input_manifest(), given[0][1]).items():
                    all_dims[d] = n if d not in (dims or {}) else all_dims[d]
            _apply_user_dims(self.spec, dims, examples_fixed=False, traced=False)
            self.dims = {d: make_dim(d, all_dims[d], self.spec.dim_given.get(d)) for d in self.spec.dim_names()}
            random_ok = True
            defaults = {d: x.example for d, x in self.dims.items() if not x.given("example")}
            err = probe({d: x.example for d, x in self.dims.items()})
            if err is not None and self.dims:
                found = first_working(self.dims, probe)
                if found is not None:
                    self.dims = {d: replace(x, example=found[d]) for d, x in self.dims.items()}
                    err = None
            if err is not None:
                if not given:
                    raise VerificationError(
                        "export (import)", f"the imported graph fails on generated feeds at sizes "
                        f"{ {d: x.example for d, x in self.dims.items()} }: {err}",
                        "give feeds it can run (--feeds FILE.npz, feeds= in the API: arrays named after the inputs, "
                        "e.g. valid indices or shape tensors), a value range (--range NAME=LOW:HIGH), or the dims' "
                        "sizes and constraints (--dim NAME=SIZE,min=N,multiple_of=N)")
                random_ok = False
                self.notes.append(f"generated feeds do not run ({one_line(err)}): verified on the given feeds only")
            elif self.dims:
                self._tie(find_ties(self.dims, probe))
                examples = lower({d: x.example for d, x in self.dims.items()},
                                 {d: n for d, n in defaults.items() if d in self.dims}, probe)
                self.dims = {d: replace(x, example=examples[d]) for d, x in self.dims.items()}
                # A maximum found with made-up values of an integer input (silero-vad's sample rate picks
                # a branch) would refuse real inputs ORT runs: none is claimed then.
                self.dims = discover(self.dims, probe, "onnxruntime", affordable=self._affordable,
                                     find_max=not arbitrary)
                if arbitrary:
                    self.notes.append(f"no maximum size was searched: input(s) {', '.join(arbitrary)} got made-up values, "
                                      "which may take another branch than real ones")
            self.spec.dims = {d: x.example for d, x in self.dims.items()}
            self._set_plan(given=given, random_ok=random_ok)
            # No PyTorch here: the imported graph as given is the reference for the optimized one.
            self.references = []
            dropped = []
            for i, (plan, f, src) in enumerate(zip(self.plans, self.plan_feeds, self.plan_sources)):
                try:
                    self.references.append(_ort.run(sess, f, outputs, stage="export (import)"))
                except PolyonnxError as e:
                    if src == "generated" and given:
                        # Random values of an index or shape input can be invalid at one size set and
                        # valid at another; with real feeds given, such a set is dropped, not fatal.
                        dropped.append((i, plan, e.message.split(": ", 1)[-1]))
                        continue
                    raise VerificationError(
                        "export (import)", f"the imported graph fails on the {src} feeds at sizes {plan}: {e.message}",
                        "check the given feeds, or the dims' constraints (--dim NAME=SIZE,min=N,multiple_of=N)",
                    ) from None
            if dropped:
                self.plan = self.plan.without(i for i, _, _ in dropped)
                self.notes.append(f"{len(dropped)} generated feed sets do not run (e.g. at {dropped[0][1]}: "
                                  f"{one_line(dropped[0][2])}) and were dropped; the given feeds were verified")
            if self.upgrade:
                # The conversion, checked at every planned size (not only the feeds it was chosen on).
                self.upgrade = _upgrade.check_plan(original, self.references, self.plan_feeds, self.plans, self.upgrade)
            self.output_specs = self._derive_outputs(graph=model)
            self._save_with_shapes(model, {s.name: s.shape for s in inputs} | {o["name"]: o["shape"] for o in self.output_specs},
                                   source)
            self.raw_path = source
            self.strategy = "onnx-import"
            self.torch_check = None
            self.attempts.append({"strategy": "onnx-import", "ok": True})
            self.declared = {}
            st["result"] = (f"{len(inputs)} inputs, {len(self.output_specs)} outputs; " + self._plan_text()
                            + (f"; feeds: {self.plan.sources}" if given else ""))


def run_check(plan: VerificationPlan, output_specs, path: Path, against: str, kind: str, *, reference_outputs,
              stage="export (verify)", variant="fp32", outputs=None):
    """Run ``path`` in ONNX Runtime Python on every run of ``plan`` and compare with the references.

    ``outputs``: this file's outputs on the plan's feeds when an earlier stage already ran it there
    (a BASIC-level session, as here): compared as they are instead of building a second session
    on the same bytes."""
    from . import _ort

    sess = None if outputs is not None else _ort.session(path, stage=stage)
    tol = tolerance(kind, against)
    sizes = plan.sizes
    per_output = {o["name"]: [] for o in output_specs}
    passed, failures, outs = True, [], []
    for i, (at, feeds, ref) in enumerate(zip(sizes, plan.feeds, reference_outputs)):
        try:
            got = outputs[i] if sess is None else _ort.run(sess, feeds, [o["name"] for o in output_specs], stage=stage)
        except PolyonnxError as e:
            failures.append(f"at {at}: {e.message.split(': ', 1)[-1]}")
            passed = False
            outs.append(None)
            continue
        outs.append(got)
        res, ok = compare_outputs(got, ref, output_specs, tol)
        for oname, m in res.items():
            if "shape_mismatch" in m:
                failures.append(f"at {at}: output '{oname}' has shape {m['shape_mismatch'][0]}, "
                                f"PyTorch gives {m['shape_mismatch'][1]}")
            elif not m["passed"]:
                failures.append(f"at {at}: output '{oname}' max_abs {m['max_abs']:.3g}, cosine {m['cosine']:.6f}"
                                + (f", argmax agreement {m['argmax_agreement']:.3f}"
                                   if m.get("argmax_agreement") is not None else ""))
            per_output[oname].append(m)
        passed &= ok
    outputs = {}
    for oname, ms in per_output.items():
        agg = accumulate([{k: v for k, v in m.items() if k != "passed"} for m in ms if "shape_mismatch" not in m])
        agg["passed"] = bool(ms) and all(m["passed"] for m in ms) and len(ms) == len(sizes)
        outputs[oname] = agg
    check = {"runtime": "python", "variant": variant,
             "reference": "torch" if against == "torch" else f"python:{against}" if against == "fp32" else against,
             "passed": bool(passed and not failures), "sizes": sizes,
             "outputs": outputs, "tolerance": {k: v for k, v in tol.items() if v is not None}}
    if failures:
        check["error"] = "; ".join(failures[:6])
    return check, outs


def capture_torch(model, example_inputs, *, steps: Steps, tmp: Path, opset: int, strategies=None, given_sets=(),
                  input_names=None, output_names=None, dynamic_axes=None, inputs=None, dims=None,
                  value_ranges=None, class_axes=None, allow_pickle=False) -> Graph:
    cap = _Capturer(steps=steps, opset=opset, tmp=tmp, strategies=strategies, given_sets=given_sets)
    cap.trace_torch(model, example_inputs, input_names, output_names, dynamic_axes, inputs, dims or {},
                    value_ranges or {}, class_axes or {}, allow_pickle)
    return cap.graph()


def capture_onnx(path: Path, *, steps: Steps, tmp: Path, given_sets=(), inputs=None, dims=None, value_ranges=None,
                 class_axes=None) -> Graph:
    cap = _Capturer(steps=steps, opset=0, tmp=tmp, given_sets=given_sets)
    cap.import_onnx(Path(path), inputs, dims or {}, value_ranges or {}, class_axes or {})
    return cap.graph()


def read_feed_sets(feeds) -> list[tuple[str, dict]]:
    """``feeds=``: a dict, a list of dicts, or .npz paths -> [("user", {name: array})]."""
    if feeds is None:
        return []
    items = [feeds] if isinstance(feeds, (dict, str, Path)) else list(feeds)
    out = []
    for item in items:
        if isinstance(item, (str, Path)):
            try:
                with np.load(str(item), allow_pickle=False) as z:
                    item = {k: z[k] for k in z.files}
            except (OSError, ValueError) as e:
                raise PolyonnxError("export (feeds)", f"cannot read feeds file '{item}' ({e})",
                                    "give an .npz with one array per input, named after it (np.savez)") from None
        if not isinstance(item, dict):
            raise PolyonnxError("export (feeds)", f"a feed set is a {type(item).__name__}",
                                "give dicts of input name -> array, or .npz paths")
        out.append(("user", {k: np.asarray(v) for k, v in item.items()}))
    return out


def _ort_reason(message: str) -> str:
    """The informative tail of an ONNX Runtime run error: the node and its status message
    ('Non-zero status code returned while running Add node. Name:... Status Message: ...')."""
    for marker in ("Non-zero status code returned while running", "[ONNXRuntimeError]"):
        if marker in message:
            return message[message.rindex(marker):] if marker.startswith("Non") else \
                re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", message[message.index(marker):])
    return message


def _test_data_sets(path: Path, model) -> list[dict]:
    """Feed sets stored beside a model in the ONNX backend-test layout (test_data_set_*/input_*.pb),
    matched to graph inputs by the tensor's name, else by order among the real inputs."""
    import onnx
    from onnx import numpy_helper

    from . import _graph

    names = [n for n, _, _ in _graph.io_shapes(model, "inputs")]
    sets = []
    for folder in sorted(path.parent.glob("test_data_set_*")):
        files = sorted(folder.glob("input_*.pb"), key=lambda f: int(re.sub(r"\D", "", f.stem) or 0))
        if not files:
            continue
        feeds = {}
        for i, f in enumerate(files):
            t = onnx.TensorProto()
            try:
                t.ParseFromString(f.read_bytes())
            except Exception as e:
                raise PolyonnxError("export (import)", f"'{f}' is not a TensorProto ({type(e).__name__})",
                                    "remove it, or give feeds with --feeds FILE.npz") from None
            name = t.name if t.name in names else (names[i] if i < len(names) else None)
            if name is None:
                break
            feeds[name] = numpy_helper.to_array(t)
        if set(feeds) == set(names):
            sets.append(feeds)
    return sets


def _import_inputs(model, user_inputs: list[str] | None) -> tuple[list[InputSpec], dict]:
    """Input specs of an imported graph: its named dims (shared where the graph shares a name),
    a distinct dim per placeholder axis ('?', '', unk__N), then the user's --input specs on top:
    name, tie or pin any dim; a mismatch with the graph is an error."""
    from . import _graph

    inputs, all_dims, taken = [], {}, set()
    for iname, dtype, shape in _graph.io_shapes(model, "inputs"):
        named = []
        for axis, d in enumerate(shape):
            if isinstance(d, int) and d > 0:
                named.append(d)
                continue
            if isinstance(d, str) and not _graph.is_placeholder(d):
                dn = _graph.sanitize_dim(d, f"{iname}_dim{axis}")
            else:
                dn = _graph.sanitize_dim(f"{iname}_dim{axis}", f"input{len(inputs)}_dim{axis}")
                while dn in taken and dn not in named:
                    dn += "_"
            taken.add(dn)
            named.append(dn)
        inputs.append(InputSpec(iname, dtype, named))
    if user_inputs:
        by_name = {s.name: s for s in inputs}
        for text in user_inputs:
            want = parse_input(text)
            have = by_name.get(want.name)
            if have is None:
                raise PolyonnxError("export (spec)", f"--input names '{want.name}', which the graph does not have",
                                    f"the graph's inputs are {list(by_name)}")
            if want.dtype != have.dtype:
                raise PolyonnxError("export (spec)", f"--input '{want.name}' says {want.dtype}, the graph says {have.dtype}",
                                    f"write {want.name}:{have.dtype}[...]")
            if len(want.shape) != len(have.shape):
                raise PolyonnxError("export (spec)", f"--input '{want.name}' has rank {len(want.shape)}, the graph's "
                                    f"is {len(have.shape)} {have.shape}", "give one entry per axis")
            for axis, (w, h) in enumerate(zip(want.shape, have.shape)):
                if isinstance(h, int) and w != h:
                    raise PolyonnxError("export (spec)", f"--input '{want.name}' axis {axis} is {w}, but the graph fixes "
                                        f"it to {h}", f"write {h} there")
            have.shape = list(want.shape)
    # Default example sizes: 2 for a leading (batch-like) dim, IMPORT_EXAMPLE for the others. A tiny
    # H or W "runs" spuriously in many detectors (every stage collapses to 1x1) and hides their
    # stride; 64 is divisible by the usual strides up to 64, so discovery can find them.
    for s in inputs:
        for axis, d in enumerate(s.shape):
            if isinstance(d, str):
                all_dims[d] = min(all_dims.get(d, IMPORT_EXAMPLE), DEFAULT_EXAMPLE if axis == 0 else IMPORT_EXAMPLE)
    return inputs, all_dims


def _apply_user_dims(spec: ExportSpec, dims: dict, *, examples_fixed: bool, traced: bool = True) -> None:
    """``dims=`` / --dim: an example size (int) or constraints (dict) per named dim; merged over the
    model's own polyonnx_spec. Example inputs fix the example sizes; constraints still apply."""
    from ._dims import check_user_dim

    known = spec.dim_names()
    for name, value in (dims or {}).items():
        if name not in known:
            raise PolyonnxError("export (spec)", f"--dim {name} names no dynamic dim of the inputs",
                                f"the dynamic dims are {sorted(known) or 'none'}")
        given = check_user_dim(name, {**spec.dim_given.get(name, {}), **check_user_dim(name, value)})
        if "example" in given:
            if examples_fixed and given["example"] != spec.dims.get(name):
                raise PolyonnxError("export (spec)", f"--dim {name} gives example {given['example']}, but the example "
                                    f"inputs have {name}={spec.dims.get(name)}",
                                    "give only constraints (min/max/multiple_of) with example inputs, or matching sizes")
            if traced:
                check_example_size(name, given["example"])
            spec.dims[name] = given["example"]
        spec.dim_given[name] = given
    for name in known:
        if name not in spec.dims:
            g = spec.dim_given.get(name, {})
            m = g.get("multiple_of", 1)
            # The default example (2) moved up to the first legal size the constraints allow.
            spec.dims[name] = -(-max(DEFAULT_EXAMPLE, g.get("min", 1)) // m) * m


def _apply_user_ranges(spec: ExportSpec, value_ranges: dict) -> None:
    by_name = {s.name: s for s in spec.inputs}
    for iname, rng in (value_ranges or {}).items():
        if iname not in by_name:
            raise PolyonnxError("export (spec)", f"--range names unknown input '{iname}'", f"the inputs are {list(by_name)}")
        apply_range(by_name[iname], rng)


def failure_text(check: dict) -> str:
    if check.get("error"):
        return check["error"]
    bad = [n for n, m in check["outputs"].items() if not m.get("passed")]
    return f"outputs {bad} out of tolerance"


def summary(check: dict) -> str:
    parts = []
    for oname, m in check["outputs"].items():
        if m.get("exact") is not None and m.get("max_abs") in (0.0, None):
            parts.append(f"{oname}: exact" if m.get("exact") else f"{oname}: differs")
            continue
        if m.get("max_abs") is None or m.get("cosine") is None:
            # No comparable run (e.g. --no-verify on a graph that failed): say so, don't format None.
            parts.append(f"{oname}: not compared")
            continue
        text = f"{oname}: max_abs {m['max_abs']:.2e}, cosine {m['cosine']:.6f}"
        if m.get("argmax_agreement") is not None:
            text += f", argmax {m['argmax_agreement']:.3f}"
        parts.append(text)
    if check.get("error") and not check["passed"]:
        parts.append(one_line(check["error"]))
    return ("passed; " if check["passed"] else "FAILED; ") + "; ".join(parts)
