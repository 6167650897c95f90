"""The ONNX backend test data in the installed onnx wheel, through raw ONNX Runtime and through polyonnx.

    nice -n 10 .venv/bin/python bench/onnx_backend.py [--filter SUBSTR] [--limit N]

For every case of onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple,light} (a
model and test_data_set_*/{input,output}_*.pb; `light` keeps light_X.onnx beside
light_X_output_0.pb and, like onnx's own runner, feeds arange(n)/n with dynamic dims at 1):

  ort py      raw ONNX Runtime Python matches the case's outputs;
  raw node    raw onnxruntime-node matches (bench/onnx_backend_node.js, one process for all cases);
  removed     ORT cannot load the graph because an operator version was removed;
  poly py/node   polyonnx.export(model.onnx, quantize="none"), then the `python` / `node` runtime;
  upgraded    polyonnx's manifest records export.upgrade with passed: true;
  _upgrade    polyonnx._upgrade.load_for_ort alone upgrades and verifies it (for the lead's wiring);
  poly wasm   with --wasm, the bundle in the `wasm` runtime (onnxruntime-web's kernels) too.

Outputs are paired with output_*.pb by the graph's output order and compared by name: floats
within atol 1e-7 + rtol 1e-3 * |expected| (onnx's backend-test defaults, NaN equals NaN), dtype
and shape equal, other types exact. Writes bench/results/onnx_backend.json (every polyonnx
failure with its stage and error) and /tmp/backend-findings.md (failures by class, two examples each).
The polyonnx and raw-Python columns run in a child process, restarted after a crash or a timeout.
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
FAMILIES = ("pytorch-converted", "pytorch-operator", "simple", "light")
RESULTS = ROOT / "bench" / "results" / "onnx_backend.json"
FINDINGS = Path("/tmp/backend-findings.md")
NODE_SCRIPT = ROOT / "bench" / "onnx_backend_node.js"
# onnx.backend.test.case.test_case.TestCase defaults: rtol 1e-3, atol 1e-7.
RTOL, ATOL = 1e-3, 1e-7
CASE_TIMEOUT_S = 300
REMOVED = re.compile(r"Could not find an implementation for \w+\(\d+\)")
COLUMNS = ("cases", "ort py", "raw node", "removed", "poly py", "poly node", "poly node of ort py", "upgraded",
           "_upgrade")
WASM_COLUMN = "poly wasm"  # with --wasm: onnxruntime-web (wasm) in Node, the browser's kernels


@dataclass
class Case:
    family: str
    name: str
    model: Path
    sets: list  # [(inputs {name: array}, outputs {name: array})], named by the graph

    @property
    def key(self) -> str:
        return f"{self.family}/{self.name}"


# -- cases -----------------------------------------------------------------------------------------

def discover(substr: str | None = None, limit: int | None = None) -> list[tuple[str, str]]:
    """(family, name) of every case, in a stable order."""
    found = []
    for family in FAMILIES:
        folder = DATA / family
        if family == "light":
            names = [p.stem for p in sorted(folder.glob("light_*.onnx"))]
        else:
            names = [p.name for p in sorted(folder.iterdir()) if (p / "model.onnx").exists()]
        found += [(family, n) for n in names if not substr or substr in f"{family}/{n}"]
    return found[:limit] if limit else found


def load_case(family: str, name: str) -> Case:
    if family == "light":
        path = DATA / family / f"{name}.onnx"
        model = onnx.load(str(path), load_external_data=False)
        outputs = {o.name: _array(path.parent / f"{name}_output_{i}.pb") for i, o in enumerate(model.graph.output)}
        return Case(family, name, path, [(_light_inputs(model), outputs)])
    path = DATA / family / name / "model.onnx"
    model = onnx.load(str(path), load_external_data=False)
    graph_inputs = [vi.name for vi in model.graph.input]
    sets = []
    for folder in sorted(path.parent.glob("test_data_set_*"), key=_index):
        inputs = {}
        for i, f in enumerate(sorted(folder.glob("input_*.pb"), key=_index)):
            tensor = onnx.load_tensor(str(f))
            # input_i.pb is graph.input[i] (onnx's runner); a .pb that carries its own name says so.
            name_ = tensor.name if tensor.name in graph_inputs else graph_inputs[i]
            inputs[name_] = numpy_helper.to_array(tensor)
        outputs = {o.name: _array(folder / f"output_{i}.pb") for i, o in enumerate(model.graph.output)
                   if (folder / f"output_{i}.pb").exists()}
        sets.append((inputs, outputs))
    return Case(family, name, path, sets)


def _index(p: Path) -> int:
    return int(re.findall(r"\d+", p.name)[-1])


def _array(path: Path) -> np.ndarray:
    return numpy_helper.to_array(onnx.load_tensor(str(path)))


def _light_inputs(model: onnx.ModelProto) -> dict:
    """onnx's runner convention for `light` models: float inputs arange(n)/n, dynamic dims at 1."""
    weights = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in weights:
            continue
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim)
        n = int(np.prod(shape))
        feeds[vi.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    return feeds


# -- comparison ------------------------------------------------------------------------------------

def disagreement(got, want: np.ndarray) -> str | None:
    """None when ``got`` matches ``want`` (backend-test rule), else why."""
    got = np.asarray(got)
    if got.dtype != want.dtype and not (got.dtype.kind in "OUS" and want.dtype.kind in "OUS"):
        return f"dtype {got.dtype} instead of {want.dtype}"
    if got.shape != want.shape:
        return f"shape {list(got.shape)} instead of {list(want.shape)}"
    if want.dtype.kind != "f":
        return None if np.array_equal(got, want) else "values differ"
    g, w = got.astype(np.float64), want.astype(np.float64)
    nan = np.isnan(g) & np.isnan(w)
    with np.errstate(invalid="ignore"):
        diff = np.where(nan | (g == w), 0.0, np.abs(g - w))
        bad = ~(diff <= ATOL + RTOL * np.abs(np.where(nan, 0.0, w)))
    if bad.any():
        return f"{int(bad.sum())}/{bad.size} values outside tolerance, max_abs {float(np.nanmax(diff)):.3g}"
    return None


def check_outputs(case: Case, run) -> dict:
    """``run(inputs) -> {name: array}`` on every data set, compared by output name."""
    for k, (inputs, outputs) in enumerate(case.sets):
        got = run(inputs)
        for name, want in outputs.items():
            if name not in got:
                return {"pass": False, "error": f"output '{name}' missing (got {sorted(got)})"}
            why = disagreement(got[name], want)
            if why:
                return {"pass": False, "error": f"data set {k}, output '{name}': {why}"}
    return {"pass": True}


def _short(e: BaseException | str, limit: int = 600) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit] + " ..."


# -- the child process: raw ONNX Runtime Python, polyonnx, _upgrade --------------------------------

def raw_python(case: Case) -> dict:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(case.model), providers=["CPUExecutionProvider"])
    except Exception as e:
        reason = _short(e, 300)
        return {"pass": False, "stage": "load", "error": reason, "removed": bool(REMOVED.search(reason))}
    names = [o.name for o in session.get_outputs()]
    try:
        return check_outputs(case, lambda feeds: dict(zip(names, session.run(names, feeds))))
    except Exception as e:
        return {"pass": False, "stage": "run", "error": _short(e)}
    finally:
        del session


def through_polyonnx(case: Case, work: Path, pass_feeds: bool, runtimes: tuple[str, ...]) -> dict:
    import polyonnx
    from polyonnx import pipeline

    out = {"export": None, **{rt: None for rt in runtimes}, "upgrade": None, "feeds": None}
    options = dict(quantize="none", progress=False, force=True)
    # `light` has no test_data_set_* beside its models: the feeds are given (when export accepts feeds=).
    if (pass_feeds or case.family == "light") and "feeds" in inspect.signature(pipeline.export).parameters:
        options["feeds"] = [inputs for inputs, _ in case.sets]
    started = time.perf_counter()
    try:
        bundle = polyonnx.export(str(case.model), out=work / "bundle", **options)
    except Exception as e:
        out["export"] = _failure(e)
        return out
    finally:
        out["export_s"] = round(time.perf_counter() - started, 2)
    out["export"] = {"pass": True}
    record = bundle.manifest.get("export", {})
    out["upgrade"], out["feeds"] = record.get("upgrade"), record.get("feeds")
    for runtime in runtimes:
        try:
            with polyonnx.runtime(runtime, bundle) as rt:
                out[runtime] = check_outputs(case, rt.run)
        except Exception as e:
            out[runtime] = _failure(e)
    return out


def upgrade_alone(case: Case) -> dict:
    from polyonnx import _upgrade

    model = onnx.load(str(case.model))
    try:
        upgraded, record = _upgrade.load_for_ort(model, [inputs for inputs, _ in case.sets])
    except Exception as e:
        return _failure(e)
    return {"pass": bool(record and record["passed"]), "record": record}


def _failure(e: BaseException) -> dict:
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    return {"pass": False, "type": type(e).__name__, "error": _short(e),
            "at": f"{Path(where.filename).name}:{where.lineno}" if where else None}


def measure(family: str, name: str, pass_feeds: bool, runtimes: tuple[str, ...]) -> dict:
    case = load_case(family, name)
    model = onnx.load(str(case.model), load_external_data=False)
    record = {"family": family, "case": name, "ir_version": model.ir_version,
              "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
              "data_sets": len(case.sets),
              "inputs": {k: f"{v.dtype}{list(v.shape)}" for k, v in (case.sets[0][0] if case.sets else {}).items()}}
    record["ort_python"] = raw_python(case)
    work = Path(tempfile.mkdtemp(prefix="onnx-backend-"))
    try:
        record["polyonnx"] = through_polyonnx(case, work, pass_feeds, runtimes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if record["ort_python"].get("removed"):
        record["upgrade_alone"] = upgrade_alone(case)
    return record


def _child(conn, log_path: str) -> None:
    # ONNX Runtime and onnx write native warnings to fd 2: keep them in a log, not in the table.
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            conn.send(measure(*job))
        except Exception as e:
            conn.send({"family": job[0], "case": job[1], "error": _failure(e)})


class Child:
    """One child process measuring cases; replaced after a crash or a timeout."""

    def __init__(self, log_path: Path):
        self.log_path = str(log_path)
        self.proc = None

    def measure(self, family: str, name: str, pass_feeds: bool, runtimes: tuple[str, ...]) -> dict:
        if self.proc is None or not self.proc.is_alive():
            ctx = multiprocessing.get_context("spawn")
            self.conn, theirs = ctx.Pipe()
            self.proc = ctx.Process(target=_child, args=(theirs, self.log_path), daemon=True)
            self.proc.start()
        self.conn.send((family, name, pass_feeds, runtimes))
        if self.conn.poll(CASE_TIMEOUT_S):
            try:
                return self.conn.recv()
            except EOFError:
                pass
        else:
            self.proc.kill()
        self.proc.join(5)
        code = self.proc.exitcode
        self.proc = None
        why = (f"timed out after {CASE_TIMEOUT_S} s" if code in (None, -9) else f"the process died (exit {code})")
        return {"family": family, "case": name,
                "error": {"pass": False, "type": "Crash", "error": f"{why}; see {self.log_path}"}}

    def close(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(30)


# -- raw onnxruntime-node: one process for every case ----------------------------------------------

NODE_TYPES = {"float32": "float32", "float64": "float64", "float16": "float16", "int8": "int8", "uint8": "uint8",
              "int16": "int16", "uint16": "uint16", "int32": "int32", "uint32": "uint32", "int64": "int64",
              "uint64": "uint64", "bool": "bool"}


def raw_node(keys: list[tuple[str, str]], work: Path) -> dict:
    """{case key: {"pass": bool, "error"?}} from one onnxruntime-node process (restarted after a crash)."""
    jobs, cases = [], {}
    for family, name in keys:
        case = load_case(family, name)
        cases[case.key] = case
        for k, (inputs, outputs) in enumerate(case.sets):
            folder = work / family / name / str(k)
            folder.mkdir(parents=True, exist_ok=True)
            feeds = []
            for i, (iname, arr) in enumerate(inputs.items()):
                file = folder / f"input_{i}.bin"
                if arr.dtype.kind in "OUS":
                    kind = "string"
                    file.write_text(json.dumps([_text(s) for s in arr.ravel().tolist()]))
                else:
                    kind = NODE_TYPES.get(str(arr.dtype), str(arr.dtype))
                    file.write_bytes(np.ascontiguousarray(arr).tobytes())
                feeds.append({"name": iname, "type": kind, "dims": list(arr.shape), "file": str(file)})
            jobs.append({"id": f"{case.key}#{k}", "model": str(case.model), "feeds": feeds,
                         "outputs": list(outputs), "out_dir": str(folder)})
    lines = _node_lines(jobs, work)
    results = {}
    for key, case in cases.items():
        verdict = {"pass": True}
        for k, (_, outputs) in enumerate(case.sets):
            line = lines.get(f"{key}#{k}", {"ok": False, "error": "no result from node"})
            if not line["ok"]:
                verdict = {"pass": False, "error": _short(line["error"])}
                break
            got = {o["name"]: _node_array(o) for o in line["outputs"]}
            for oname, want in outputs.items():
                why = disagreement(got[oname], want)
                if why:
                    verdict = {"pass": False, "error": f"data set {k}, output '{oname}': {why}"}
                    break
            if not verdict["pass"]:
                break
        results[key] = verdict
    return results


def _text(s) -> str:
    return s.decode("utf-8") if isinstance(s, bytes) else str(s)


def _node_lines(jobs: list[dict], work: Path) -> dict:
    lines, todo = {}, list(jobs)
    env = dict(os.environ, NODE_PATH=str(ROOT / "node_modules"))
    while todo:
        (work / "jobs.json").write_text(json.dumps(todo))
        proc = subprocess.run(["node", str(NODE_SCRIPT), str(work / "jobs.json")], capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=1800)
        started = None
        for raw in proc.stdout.splitlines():
            line = json.loads(raw)
            if line.get("started"):
                started = line["id"]
            else:
                lines[line["id"]], started = line, None
        if proc.returncode == 0:
            break
        if started is None:
            raise RuntimeError(f"onnx_backend_node.js failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        # ONNX Runtime ended the process on this job: record it and go on with the rest.
        lines[started] = {"ok": False, "error": f"onnxruntime-node crashed (exit {proc.returncode}): "
                                                f"{_short(proc.stderr[-300:], 300)}"}
        todo = todo[[j["id"] for j in todo].index(started) + 1:]
    return lines


def _node_array(o: dict) -> np.ndarray:
    if o["type"] == "string":
        return np.array(json.loads(Path(o["file"]).read_text()), dtype=object).reshape(o["dims"])
    data = Path(o["file"]).read_bytes()
    dtype = np.uint8 if o["type"] == "bool" else np.dtype(o["type"])
    arr = np.frombuffer(data, dtype=dtype).reshape(o["dims"])
    return arr.astype(bool) if o["type"] == "bool" else arr


# -- the report ------------------------------------------------------------------------------------

def verdicts(r: dict) -> dict:
    """The table's columns for one case record, as booleans."""
    poly = r.get("polyonnx") or {}
    ort_py = bool(r.get("ort_python", {}).get("pass"))
    node = bool((poly.get("node") or {}).get("pass"))
    upgrade = poly.get("upgrade") or {}
    return {"ort py": ort_py, "raw node": bool(r.get("raw_node", {}).get("pass")),
            "removed": bool(r.get("ort_python", {}).get("removed")),
            "poly py": bool((poly.get("python") or {}).get("pass")), "poly node": node,
            "poly node of ort py": ort_py and node,
            "upgraded": bool(upgrade.get("passed")) and node,
            "_upgrade": bool((r.get("upgrade_alone") or {}).get("pass")),
            WASM_COLUMN: bool((poly.get("wasm") or {}).get("pass"))}


def columns(records: list[dict]) -> tuple[str, ...]:
    wasm = any("wasm" in (r.get("polyonnx") or {}) for r in records)
    return COLUMNS + ((WASM_COLUMN,) if wasm else ())


def table(records: list[dict]) -> list[dict]:
    rows = []
    for family in (*FAMILIES, "total"):
        mine = [r for r in records if family in ("total", r["family"])]
        if not mine:
            continue
        row = {"family": family, "cases": len(mine)}
        for col in columns(records)[1:]:
            row[col] = sum(verdicts(r)[col] for r in mine)
        rows.append(row)
    return rows


def render(rows: list[dict]) -> str:
    cols = [c for c in (*COLUMNS, WASM_COLUMN) if rows and c in rows[0]]
    head = "| family | " + " | ".join(cols) + " |"
    lines = [head, "|---|" + "---:|" * len(cols)]
    for row in rows:
        lines.append(f"| {row['family']} | " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines)


# Failure classes, first match wins: (label, pattern on the failing stage's error, what it means / the fix).
CLASSES = (
    ("the manifest schema's opset floor refuses the graph", r"less than the minimum of",
     "no opset floor beyond what the shipped runtimes have"),
    ("polyonnx.json does not match the schema", r"does not match shared-schemas", None),
    ("initializers listed among graph inputs treated as inputs", r"Required inputs|_SHAPE'|initializer",
     "IR < 4 graphs list every weight among graph.input: those with an initializer are not inputs"),
    ("removed operator version, not upgraded", r"Could not find an implementation for",
     "the import must call _upgrade.load_for_ort"),
    ("export(feeds=) not accepted", r"unexpected keyword argument 'feeds'", None),
    ("StringNormalizer needs the en_US.UTF-8 locale (this machine has none)", r"locale",
     "raw ONNX Runtime fails the same way here: the machine's locales, not polyonnx"),
    ("unregistered operator (training / custom domain)", r"not a registered function/op|Gradient",
     "ai.onnx.preview.training::Gradient: no runtime implements it; raw ONNX Runtime fails too, the refusal is right"),
    ("Node check on regenerated feeds", r"export \(node\)",
     "node_check -> verify_bundle regenerates feeds from the manifest; where input values decide shapes "
     "(Expand's shape, split sizes) they must be the feed sets the export verified (given / test_data)"),
    ("polyonnx's own feeds fail in the graph",
     r"fails at sizes|fails on the generated feeds|failed to run the model on",
     "integer inputs whose values decide shapes (Expand's shape, SplitToSequence's sizes): generated values fail. "
     "With given or test_data feeds, a generated set that fails should be dropped with a note, not raise"),
    ("string tensors", r"dtype string|string tensor|'string'", None),
    ("output differs from output_*.pb", r"values outside tolerance|values differ|shape \[|dtype ", None),
    ("output missing or renamed", r"output '.*' missing|unknown input|missing input", None),
    ("verification refuses the graph", r"VerificationError|differs from|outside tolerance", None),
    ("crash or timeout", r"timed out|process died|crashed", None),
)


def failure(r: dict) -> tuple[str, str] | None:
    """(stage, error text) of the first polyonnx stage that failed; None when python and node pass."""
    if "error" in r:
        return "bench", r["error"]["error"]
    poly = r["polyonnx"]
    for stage in ("export", "python", "node", "wasm"):
        got = poly.get(stage)
        if got is not None and not got.get("pass"):
            where = f" (at {got['at']})" if got.get("at") else ""
            return stage, f"{got.get('type', '')}: {got['error']}{where}".lstrip(": ")
    return None


def classify(stage: str, text: str) -> str:
    for label, pattern, _ in CLASSES:
        if re.search(pattern, text):
            return f"{stage}: {label}"
    generic = re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "_", text)[:90]
    return f"{stage}: other: {generic}"


def findings(records: list[dict], rows: list[dict], command: str) -> str:
    groups = collections.defaultdict(list)
    for r in records:
        f = failure(r)
        if f:
            groups[classify(*f)].append((f"{r['family']}/{r['case']}", f[1], r))
    out = [f"# polyonnx on the ONNX backend test data ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
           "", f"`{command}` at `{_git_head()}`", "", render(rows), "",
           "## polyonnx failures by class (first failing stage: export, python or node runtime)", ""]
    for label, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        ort_ok = sum(bool(r.get("ort_python", {}).get("pass")) for _, _, r in items)
        out.append(f"### {label}: {len(items)} cases ({ort_ok} of them pass in raw ONNX Runtime Python)")
        hint = next((h for lab, _, h in CLASSES if h and label.endswith(lab)), None)
        if hint:
            out.append(f"- meaning / fix: {hint}")
        for key, text, _ in items[:2]:
            out.append(f"- `{key}`: {_short(text, 400)}")
        if "removed operator version" in label:
            alone = sum(bool((r.get("upgrade_alone") or {}).get("pass")) for _, _, r in items)
            out.append(f"- polyonnx._upgrade.load_for_ort alone upgrades and verifies {alone} of these "
                       "(column `_upgrade`)")
        out.append("")
    return "\n".join(out) + "\n"


def _git_head() -> str:
    """The commit measured; a working tree with edits to polyonnx itself says so."""
    if os.environ.get("ONNX_BACKEND_COMMIT"):
        return os.environ["ONNX_BACKEND_COMMIT"]
    try:
        head = subprocess.run(["git", "log", "--oneline", "-1"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "python/polyonnx", "js", "shared-schemas"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return "unknown commit"
    return f"{head} + uncommitted changes to polyonnx" if dirty else head


def progress(i: int, n: int, r: dict) -> str:
    v = verdicts(r) if "error" not in r else {}
    shown = ("ort py", "raw node", "poly py", "poly node") + (
        (WASM_COLUMN,) if "wasm" in (r.get("polyonnx") or {}) else ())
    marks = " ".join(f"{c}:{'ok' if v.get(c) else '--'}" for c in shown)
    f = failure(r)
    tail = f"  [{f[0]}] {_short(f[1], 140)}" if f else ""
    if v.get("removed"):
        marks += f" upgraded:{'ok' if v.get('upgraded') else '--'}"
    return f"[{i:3}/{n}] {r['family']}/{r['case']:<52} {marks}{tail}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--filter", help="only cases whose family/name contains this")
    ap.add_argument("--limit", type=int, help="at most this many cases")
    ap.add_argument("--pass-feeds", action="store_true",
                    help="give every case's test data to export(feeds=) instead of relying on the pipeline "
                         "finding test_data_set_* beside the model")
    ap.add_argument("--wasm", action="store_true",
                    help="also run each bundle in the `wasm` runtime (onnxruntime-web's kernels, in Node)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--findings", type=Path, default=FINDINGS, help=f"failures by class (default {FINDINGS})")
    ap.add_argument("--at-commit", metavar="REV",
                    help="measure the polyonnx of commit REV (git archive into a temporary folder) instead of "
                         "the working tree, which may hold someone's half-done edit")
    args = ap.parse_args(argv)
    if args.at_commit:
        return at_commit(args.at_commit, [a for a in (argv if argv is not None else sys.argv[1:])
                                          if a not in ("--at-commit", args.at_commit)], args.out)
    command = "python bench/onnx_backend.py " + " ".join(argv if argv is not None else sys.argv[1:])
    keys = discover(args.filter, args.limit)
    runtimes = ("python", "node", "wasm") if args.wasm else ("python", "node")
    if not keys:
        print("onnx_backend: no case matches", file=sys.stderr)
        return 2
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="onnx-backend-node-"))
    try:
        print(f"raw onnxruntime-node on {len(keys)} cases (one process) ...", flush=True)
        node = raw_node(keys, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log = Path(tempfile.gettempdir()) / "onnx_backend_child.log"
    log.write_text("")
    child, records = Child(log), []
    try:
        for i, (family, name) in enumerate(keys, 1):
            r = child.measure(family, name, args.pass_feeds, runtimes)
            r["raw_node"] = node.get(f"{family}/{name}", {"pass": False, "error": "not run"})
            records.append(r)
            print(progress(i, len(keys), r), flush=True)
            if i % 10 == 0:
                args.findings.write_text(findings(records, table(records), command + f"  (partial: {i}/{len(keys)})"))
    finally:
        child.close()
    rows = table(records)
    print()
    print(render(rows))
    args.findings.write_text(findings(records, rows, command))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": command, "commit": _git_head(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - started, 1), "tolerance": {"rtol": RTOL, "atol": ATOL},
        "versions": _versions(), "table": rows,
        "failure_classes": {k: v for k, v in collections.Counter(
            classify(*f) for f in map(failure, records) if f).most_common()},
        "cases": records}, indent=1, default=str) + "\n")
    print(f"\nwrote {args.out} and {args.findings} ({time.perf_counter() - started:.0f} s)")
    return 0


def at_commit(rev: str, argv: list[str], out: Path) -> int:
    """Run this script as it is in commit ``rev`` on that commit's polyonnx; results still land in ``out``."""
    label = subprocess.run(["git", "log", "--oneline", "-1", rev], cwd=ROOT, capture_output=True, text=True,
                           check=True, timeout=30).stdout.strip()
    tree = Path(tempfile.mkdtemp(prefix="onnx-backend-tree-"))
    try:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True, timeout=120)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=120)
        (tree / "node_modules").symlink_to(ROOT / "node_modules")
        if "--out" not in argv:
            argv = [*argv, "--out", str(out.resolve())]
        env = dict(os.environ, ONNX_BACKEND_COMMIT=label)
        return subprocess.run([sys.executable, str(tree / "bench" / "onnx_backend.py"), *argv], cwd=tree,
                              env=env).returncode
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def _versions() -> dict:
    import onnxruntime

    node = subprocess.run(["node", "-p", "require('onnxruntime-node/package.json').version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60).stdout.strip()
    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "onnxruntime-node": node,
            "numpy": np.__version__}


if __name__ == "__main__":
    sys.exit(main())
