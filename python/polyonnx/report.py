"""Short plain-text tables of a bundle for the terminal (stdout)."""

from __future__ import annotations

import sys

from ._dims import describe, from_manifest


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
            if t.get("value_range_origin"):
                extra += f" ({t['value_range_origin']})"
            print(f"  {side[:-1]:6} {t['name']}: {t['dtype']}[{', '.join(map(str, t['shape']))}]{extra}", file=out)
    for dname, d in m["dims"].items():
        if d.get("derived"):
            print(f"  dim    {dname}: example {d['example']}, verified at {d['verified']} (derived)", file=out)
            continue
        # The constraints every runtime enforces, with where each came from, and the sizes verified.
        print(f"  dim    {describe(from_manifest(dname, d))}; verified at {d['verified']}", file=out)
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
    stages = ex.get("stages") or []
    if stages:
        # Where the export's time went (issue #14): every step, and inside quantization each part.
        print(file=out)
        print(f"export time: {ex.get('seconds', sum(s['seconds'] for s in stages)):.1f} s", file=out)
        for s in stages:
            print(f"  {s['seconds']:6.2f} s  {s['stage']}", file=out)
    for note in m.get("notes", []):
        print(f"note: {note}", file=out)


# -- quantization report ----------------------------------------------------------------------------
def quantization_rows(manifest: dict) -> list[dict]:
    """fp32 and every candidate as flat rows: what the table and the plot show."""
    q = manifest.get("quantization_report")
    if not q:
        return []
    metric = (q.get("evaluation") or {}).get("metric")
    rows = [{"name": "fp32", "bytes": q["fp32"].get("bytes"), "size_ratio": 1.0, "cosine": 1.0, "argmax": 1.0,
             "task": q["fp32"].get("task_metric"), "latency": q["fp32"].get("latency_ms", {}), "speedup": {},
             "verdict": "reference", "metric": metric}]
    for c in q["candidates"]:
        rows.append({"name": c["name"], "bytes": c.get("bytes"), "size_ratio": c.get("size_ratio"),
                     "cosine": c.get("cosine"), "argmax": c.get("argmax_agreement"), "task": c.get("task_metric"),
                     "latency": c.get("latency_ms", {}), "speedup": c.get("speedup", {}),
                     "verdict": "CHOSEN" if c.get("chosen") else ("accepted" if c.get("accepted") else "refused"),
                     "reason": c.get("reason", ""), "metric": metric})
    return rows


def print_quantization(bundle, out=None) -> None:
    out = out or sys.stdout
    m = bundle.manifest
    q = m.get("quantization_report")
    if not q:
        print("no quantization report in this bundle (exported with --quantize none)", file=out)
        return
    rows = quantization_rows(m)
    runtimes = sorted({rt for r in rows for rt in r["latency"]})
    metric = rows[0]["metric"]
    ev = q.get("evaluation", {})
    print(f"quantization ({q['mode']}), evaluated on {ev.get('samples', '?')} {ev.get('source', '')} samples; "
          f"latency at {ev.get('latency_sizes', {})}, {ev.get('threads', '?')} threads", file=out)
    head = ["variant", "size", "ratio", "cosine", "argmax"] + ([metric] if metric else []) + \
           [f"{rt} ms" for rt in runtimes] + [f"{rt} speed-up" for rt in runtimes] + ["verdict"]
    table = [head]
    for r in rows:
        table.append([r["name"], f"{r['bytes'] / 1e6:.2f} MB" if r["bytes"] else "-", _fmt(r["size_ratio"], ".2f"),
                      _fmt(r["cosine"], ".5f"), _fmt(r["argmax"], ".3f")]
                     + ([_fmt(r["task"], ".4f")] if metric else [])
                     + [_fmt(r["latency"].get(rt), ".3f") for rt in runtimes]
                     + [_fmt(r["speedup"].get(rt), ".2f") + ("x" if r["speedup"].get(rt) else "") for rt in runtimes]
                     + [r["verdict"]])
    _table(table, out)
    for r in rows[1:]:
        if r.get("reason"):
            print(f"  {r['name']}: {r['reason']}", file=out)
    print(f"=> {q.get('summary', '')}", file=out)
    if q.get("worst_tensors"):
        print("activations that lose the most (lowest SQNR first; candidates for --exclude-nodes):", file=out)
        for w in q["worst_tensors"]:
            print(f"  {w['sqnr_db']:7.2f} dB  {w['tensor']}" + (f"  (node {w['node']})" if w.get("node") else ""),
                  file=out)


def _scatter(rows, runtimes, accuracy_key, y_label, *, x_of, x_label, esc, by_runtime=True) -> list[str]:
    """One inline SVG scatter plot: accuracy (y) against x_of(row, runtime), one colour per variant,
    one marker shape per runtime, marker area ~ file size; the chosen variant outlined."""
    W, H, L, B, T, R = 740, 400, 92, 50, 20, 160
    svg = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg" '
           'font-family="system-ui, sans-serif" font-size="12">']
    points = [(r, rt) for r in rows for rt in runtimes if x_of(r, rt) is not None and r[accuracy_key] is not None]
    if not points:
        svg.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">nothing measured for this plot</text></svg>')
        return svg
    xs = [x_of(r, rt) for r, rt in points]
    ys = [r[accuracy_key] for r, _ in points]
    x0, x1 = 0.0, max(xs) * 1.15 or 1.0
    y0, y1 = min(ys), max(ys)
    pad = max((y1 - y0) * 0.15, 1e-4)
    y0, y1 = y0 - pad, y1 + pad
    sx = lambda v: L + (v - x0) / (x1 - x0) * (W - L - R)  # noqa: E731
    sy = lambda v: H - B - (v - y0) / (y1 - y0) * (H - B - T)  # noqa: E731
    svg.append(f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="#444"/>')
    svg.append(f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="#444"/>')
    for i in range(5):
        xv = x0 + (x1 - x0) * i / 4
        yv = y0 + (y1 - y0) * i / 4
        svg.append(f'<text x="{sx(xv):.1f}" y="{H - B + 16}" text-anchor="middle">{xv:.3g}</text>')
        svg.append(f'<text x="{L - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:.5g}</text>')
        svg.append(f'<line x1="{L}" y1="{sy(yv):.1f}" x2="{W - R}" y2="{sy(yv):.1f}" stroke="#eee"/>')
    svg.append(f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">{esc(x_label)}</text>')
    svg.append(f'<text transform="translate(16 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">'
               f'{esc(y_label)}, higher is better</text>')
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    max_bytes = max((r["bytes"] or 1) for r in rows)
    for k, r in enumerate(rows):
        color = colors[k % len(colors)]
        for i, rt in enumerate(runtimes):
            x = x_of(r, rt)
            if x is None or r[accuracy_key] is None:
                continue
            cx, cy = sx(x), sy(r[accuracy_key])
            size = 5 + 14 * ((r["bytes"] or 0) / max_bytes) ** 0.5
            title = f"{r['name']}" + (f" in {rt}" if by_runtime else "") + \
                    f": x {x:.3f}, {y_label} {r[accuracy_key]:.5f}, {(r['bytes'] or 0) / 1e6:.2f} MB, {r['verdict']}"
            stroke = ' stroke="#000" stroke-width="2.5"' if r["verdict"] == "CHOSEN" else ""
            if i == 0:
                svg.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{size:.1f}" fill="{color}" fill-opacity="0.55"'
                           f'{stroke}><title>{esc(title)}</title></circle>')
            else:
                svg.append(f'<rect x="{cx - size:.1f}" y="{cy - size:.1f}" width="{2 * size:.1f}" height="{2 * size:.1f}" '
                           f'fill="{color}" fill-opacity="0.55"{stroke}><title>{esc(title)}</title></rect>')
        svg.append(f'<rect x="{W - R + 14}" y="{T + 18 * k}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{W - R + 30}" y="{T + 18 * k + 10}">{esc(r["name"])}</text>')
    if by_runtime:
        for i, rt in enumerate(runtimes):
            y = T + 18 * (len(rows) + 1 + i)
            shape = (f'<circle cx="{W - R + 19}" cy="{y + 5}" r="5" fill="#888"/>' if i == 0 else
                     f'<rect x="{W - R + 14}" y="{y}" width="10" height="10" fill="#888"/>')
            svg.append(f'{shape}<text x="{W - R + 30}" y="{y + 10}">{esc(rt)}</text>')
    svg.append(f'<text x="{W - R + 14}" y="{T + 18 * (len(rows) + len(runtimes) + 2)}" fill="#555">area ~ file size</text>')
    svg.append("</svg>")
    return svg


def html_report(bundle) -> str:
    """A self-contained HTML page: a plot of accuracy against latency (marker area = file size)
    per variant and runtime, and the full table. No scripts, no external files."""
    import html

    m = bundle.manifest
    rows = quantization_rows(m)
    esc = html.escape
    runtimes = sorted({rt for r in rows for rt in r["latency"]})
    metric = rows[0]["metric"] if rows else None
    accuracy_key = "task" if metric and all(r["task"] is not None for r in rows) else "cosine"
    y_label = metric if accuracy_key == "task" else "cosine similarity to fp32"
    svg = _scatter(rows, runtimes, accuracy_key, y_label, x_of=lambda r, rt: r["latency"].get(rt),
                   x_label="median latency (ms), lower is better", esc=esc)
    svg += _scatter(rows, runtimes[:1] or ["python"], accuracy_key, y_label,
                    x_of=lambda r, rt: (r["bytes"] or 0) / 1e6 if r["bytes"] else None,
                    x_label="file size (MB), lower is better", esc=esc, by_runtime=False)
    buf = __import__("io").StringIO()
    print_quantization(bundle, out=buf)
    table_rows = "".join(
        "<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in [
            r["name"], f"{(r['bytes'] or 0) / 1e6:.2f} MB", _fmt(r["size_ratio"], ".2f"), _fmt(r["cosine"], ".5f"),
            _fmt(r["argmax"], ".3f"), _fmt(r["task"], ".4f"),
            ", ".join(f"{rt} {v:.3f}" for rt, v in r["latency"].items()) or "-",
            ", ".join(f"{rt} {v:.2f}x" for rt, v in r["speedup"].items()) or "-", r["verdict"], r.get("reason", "")])
        + "</tr>" for r in rows)
    parity = m.get("parity", {}).get("checks", [])
    parity_rows = "".join(
        f"<tr><td>{esc(c['runtime'])}</td><td>{esc(c['variant'])}</td><td>{esc(c['reference'])}</td>"
        f"<td>{esc(o)}</td><td>{_fmt(v.get('max_abs'))}</td><td>{_fmt(v.get('cosine'), '.6f')}</td>"
        f"<td>{_fmt(v.get('argmax_agreement'), '.3f')}</td><td>{'yes' if v.get('passed', c['passed']) else 'NO'}</td></tr>"
        for c in parity for o, v in c["outputs"].items())
    summary = esc((m.get("quantization_report") or {}).get("summary", "no quantization report"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>polyonnx report: {esc(m['name'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }} .summary {{ background: #f0f6ff; padding: 0.6rem 1rem; border-radius: 6px; }}
pre {{ background: #fafafa; padding: 1rem; overflow-x: auto; }}
</style></head><body>
<h1>{esc(m['name'])}</h1>
<p>{esc(m.get('description', ''))}</p>
<p class="summary">{summary}</p>
<h2>Accuracy against latency and size</h2>
{''.join(svg)}
<h2>Candidates</h2>
<table><tr><th>variant</th><th>size</th><th>ratio</th><th>cosine</th><th>argmax</th><th>{esc(metric or 'task metric')}</th>
<th>latency (ms)</th><th>speed-up</th><th>verdict</th><th>why</th></tr>{table_rows}</table>
<h2>Parity across runtimes</h2>
{f'<table><tr><th>runtime</th><th>variant</th><th>against</th><th>output</th><th>max abs</th><th>cosine</th><th>argmax</th><th>ok</th></tr>{parity_rows}</table>' if parity_rows else '<p>No parity checks recorded yet: run <code>polyonnx verify</code>.</p>'}
<h2>As text</h2>
<pre>{esc(buf.getvalue())}</pre>
<p>polyonnx {esc(m['producer']['polyonnx'])}, onnxruntime {esc(m['producer']['onnxruntime'])}, created {esc(m.get('created', ''))}</p>
</body></html>
"""
