"""Short plain-text tables of a bundle for the terminal (stdout)."""

from __future__ import annotations

import sys


def _table(rows: list[list[str]], out) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)
        if j == 0:
            print("  ".join("-" * w for w in widths), file=out)


def _fmt(v, spec=".2e"):
    return "-" if v is None else format(v, spec)


def print_bundle(bundle, out=None) -> None:
    out = out or sys.stdout
    m = bundle.manifest
    ex = m["export"]
    print(f"bundle {m['name']} at {bundle.path}", file=out)
    print(f"  exporter: {ex['strategy']}" + (f" (after {', '.join(a['strategy'] + ' failed' for a in ex['attempts'] if not a['ok'])})"
                                             if any(not a["ok"] for a in ex["attempts"]) else "")
          + f"; opset {m['opset']}, IR {m['ir_version']}" + (f"; {ex['seconds']:.1f} s" if "seconds" in ex else ""), file=out)
    for side in ("inputs", "outputs"):
        for t in m[side]:
            extra = f" values {t['value_range'][0]}..{t['value_range'][1]}" if "value_range" in t else ""
            print(f"  {side[:-1]:6} {t['name']}: {t['dtype']}[{', '.join(map(str, t['shape']))}]{extra}", file=out)
    for dname, d in m["dims"].items():
        print(f"  dim    {dname}: example {d['example']}, verified at {d['verified']}"
              + (" (derived)" if d.get("derived") else ""), file=out)
    rows = [["variant", "file", "size", "runtimes", "checked against", "max abs", "cosine", "argmax", "eval"]]
    for vname, v in m["variants"].items():
        checks = v.get("verification", []) or [None]
        for i, c in enumerate(checks):
            worst_abs = max((o.get("max_abs") or 0.0 for o in c["outputs"].values()), default=None) if c else None
            cos = min((o.get("cosine") if o.get("cosine") is not None else 1.0 for o in c["outputs"].values()),
                      default=None) if c else None
            agr = [o["argmax_agreement"] for o in c["outputs"].values() if o.get("argmax_agreement") is not None] if c else []
            ev = v.get("evaluation")
            rows.append([
                vname if i == 0 else "", v["file"] if i == 0 else "",
                f"{v['bytes'] / 1e6:.2f} MB" if i == 0 else "", ",".join(v["runtimes"]) if i == 0 else "",
                (c["reference"] + ("" if c["passed"] else " FAILED")) if c else "not verified",
                _fmt(worst_abs), _fmt(cos, ".6f"), _fmt(min(agr) if agr else None, ".3f"),
                f"{ev['metric']} {ev['value']:.4f}" if ev and i == 0 else "",
            ])
    print(file=out)
    _table(rows, out)
    parity = m.get("parity", {}).get("checks", [])
    if parity:
        print(file=out)
        rows = [["runtime", "variant", "against", "output", "max abs", "cosine", "argmax", "ok"]]
        for c in parity:
            for oname, o in c["outputs"].items():
                rows.append([c["runtime"], c["variant"], c["reference"], oname, _fmt(o.get("max_abs")),
                             _fmt(o.get("cosine"), ".6f"), _fmt(o.get("argmax_agreement"), ".3f"),
                             "yes" if o.get("passed", c["passed"]) else "NO"])
        _table(rows, out)
    for note in m.get("notes", []):
        print(f"note: {note}", file=out)
