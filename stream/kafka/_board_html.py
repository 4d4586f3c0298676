"""The board's page: tiles as HTML with inline SVG trends, and as JSON (pure: tiles in, text out).

Everything is drawn here, on the server: the page has no external script, style, font or image, and its one
inline script (polling ``/tiles`` every 2 s) is allowed by hash in the Content-Security-Policy, which forbids
every other source (``default-src 'none'``; fetches only to the page's own origin).
"""

from __future__ import annotations

import base64
import hashlib
import time
from html import escape
from typing import Any

from ._board_state import MarkKind, Tile, TileStatus

__all__ = ["page", "tiles_html", "tiles_json", "trend_svg", "CSP", "POLL_S"]

POLL_S = 2.0
SVG_W, SVG_H = 360, 120
Y_MIN_MMHG, Y_MAX_MMHG = 30.0, 210.0  # fixed scale: the same height means the same pressure on every tile

_SCRIPT = """
(function () {
  var box = document.getElementById('tiles'), note = document.getElementById('note');
  function poll() {
    fetch('/tiles', {cache: 'no-store'}).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.text();
    }).then(function (html) {
      box.innerHTML = html; note.textContent = ''; document.body.dataset.state = 'live';
    }).catch(function () {
      box.innerHTML = '<p class="lost">The board server is not answering: no data shown.</p>';
      note.textContent = 'connection lost'; document.body.dataset.state = 'lost';
    });
  }
  setInterval(poll, %d);
})();
""" % int(POLL_S * 1000)

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
       f"script-src 'sha256-{base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()}'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

_STYLE = """
body{font-family:sans-serif;background:#f4f5f7;margin:1em;color:#222}
h1{font-size:1.1em;margin:0 0 .2em} .sub{color:#666;font-size:.8em;margin-bottom:.8em}
#tiles{display:flex;flex-wrap:wrap;gap:12px}
.tile{background:#fff;border:1px solid #ccd;border-radius:6px;padding:10px;width:380px}
.tile h2{font-size:1em;margin:0 0 4px}
.numbers{font-size:2em;font-weight:bold} .numbers .unit{font-size:.45em;font-weight:normal;color:#555}
.interval,.quality,.cal,.when{font-size:.8em;color:#444}
.validity{font-size:1.4em;font-weight:bold;color:#a15c00} .reasons{font-size:.8em;color:#a15c00}
.tile[data-status=stale] .validity{color:#888}
.legend{font-size:.7em;color:#555} .lost{color:#a00;font-weight:bold}
"""

_COLORS = {"sbp": "#c0392b", "dbp": "#2c6fbb", "map": "#555"}
_MARK_STYLE = {MarkKind.CALIBRATION: ("#1e8449", ""), MarkKind.CALIBRATION_SUGGESTED: ("#d68910", "4 3")}
_MARK_TEXT = {MarkKind.CALIBRATION: "calibration", MarkKind.CALIBRATION_SUGGESTED: "calibration suggested"}


def _f0(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def _x(tile: Tile, t_s: float) -> float:
    span = max(tile.window_end_s - tile.t_from_s, 1.0)
    return round(max(0.0, min(1.0, (t_s - tile.t_from_s) / span)) * SVG_W, 1)


def _y(mmhg: float) -> float:
    frac = (min(max(mmhg, Y_MIN_MMHG), Y_MAX_MMHG) - Y_MIN_MMHG) / (Y_MAX_MMHG - Y_MIN_MMHG)
    return round(SVG_H - frac * SVG_H, 1)


def trend_svg(tile: Tile) -> str:
    """The last 30 minutes: SBP, DBP and MAP lines of the valid windows, one polyline per run (gaps shaded
    and left empty), calibrations (solid) and calibration suggestions (dashed) as vertical marks."""
    parts = [f'<svg class="trend" width="{SVG_W}" height="{SVG_H}" viewBox="0 0 {SVG_W} {SVG_H}" '
             'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="last 30 minutes">',
             f'<rect width="{SVG_W}" height="{SVG_H}" fill="#fbfbfd" stroke="#dde"/>']
    for mmhg in (60, 90, 120, 150, 180):
        parts.append(f'<line x1="0" x2="{SVG_W}" y1="{_y(mmhg)}" y2="{_y(mmhg)}" stroke="#eee"/>'
                     f'<text x="2" y="{_y(mmhg) - 2}" font-size="8" fill="#aaa">{mmhg}</text>')
    for a, b in tile.gaps:
        x0, x1 = _x(tile, a), _x(tile, b)
        if x1 > x0:
            parts.append(f'<rect class="gap" x="{x0}" y="0" width="{round(x1 - x0, 1)}" height="{SVG_H}" '
                         'fill="#e6e6e6" opacity="0.6"/>')
    for seg in tile.segments:
        for name in ("sbp", "dbp", "map"):
            pts = [(_x(tile, p.t_s), getattr(p, f"{name}_mmhg")) for p in seg]
            pts = [(x, _y(v)) for x, v in pts if v is not None]
            if len(pts) == 1:
                parts.append(f'<circle class="run {name}" cx="{pts[0][0]}" cy="{pts[0][1]}" r="1.5" '
                             f'fill="{_COLORS[name]}"/>')
            elif pts:
                dash = ' stroke-dasharray="2 2"' if name == "map" else ""
                parts.append(f'<polyline class="run {name}" fill="none" stroke="{_COLORS[name]}" stroke-width="1.5"'
                             f'{dash} points="{" ".join(f"{x},{y}" for x, y in pts)}"/>')
    for m in tile.marks:
        color, dash = _MARK_STYLE[m.kind]
        x = _x(tile, m.t_s)
        what = _MARK_TEXT[m.kind] + (f" ({m.reason})" if m.reason else "")
        parts.append(f'<line class="mark {m.kind.value}" x1="{x}" x2="{x}" y1="0" y2="{SVG_H}" stroke="{color}" '
                     f'stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "") +
                     f'><title>{escape(what)} at {time.strftime("%H:%M:%S", time.gmtime(m.t_s))}Z</title></line>')
    parts.append("</svg>")
    return "".join(parts)


def _interval(name: str, q: Any) -> str:
    if q is None or q.lo90_mmhg is None:
        return f"{name} 90 %: not given"
    return f'{name} 90 %: <span class="{name.lower()}-lo">{_f0(q.lo90_mmhg)}</span>-' \
           f'<span class="{name.lower()}-hi">{_f0(q.hi90_mmhg)}</span>'


def _tile_html(t: Tile) -> str:
    label = escape(t.label)
    out = [f'<section class="tile" data-label="{label}" data-status="{t.status.value}" '
           f'data-validity="{t.validity.value}" data-seq="{t.seq}"><h2 class="label">{label}</h2>']
    if t.status is TileStatus.NUMBERS and t.reading is not None:
        r = t.reading
        out.append(f'<div class="numbers"><span class="sbp">{_f0(r.sbp.value_mmhg)}</span>/'
                   f'<span class="dbp">{_f0(r.dbp.value_mmhg)}</span> '
                   f'(<span class="map">{_f0(r.map and r.map.value_mmhg)}</span>) <span class="unit">mmHg</span></div>')
        out.append(f'<div class="interval">{"; ".join(_interval(n, q) for n, q in (("SBP", r.sbp), ("DBP", r.dbp), ("MAP", r.map)))}</div>')
    elif t.status is TileStatus.STALE:
        out.append(f'<div class="validity">no estimate for {t.since_published_s:.0f} s</div>'
                   f'<div class="reasons">last: {escape(t.validity.value)}</div>')
    else:
        reasons = ", ".join(escape(r) for r in t.reasons) or "no reason given"
        out.append(f'<div class="validity">{escape(t.validity.value)}</div><div class="reasons">{reasons}</div>')
    quality = (f"signal quality: ECG {'-' if t.ecg_quality is None else f'{t.ecg_quality:.2f}'}, "
               f"PPG {'-' if t.ppg_quality is None else f'{t.ppg_quality:.2f}'}; input "
               + ("usable" if t.input_usable else "rejected"))
    if t.input_reasons:
        quality += " (" + ", ".join(escape(r) for r in t.input_reasons) + ")"
    out.append(f'<div class="quality">{quality}</div>')
    if t.calibration_count == 0:
        cal = "never calibrated"
    else:
        age = "" if t.calibration_age_s is None else f", last {_age(t.calibration_age_s)} ago"
        cal = f"calibrations: {t.calibration_count}{age}"
    out.append(f'<div class="cal">{cal}</div>')
    out.append(trend_svg(t))
    out.append(f'<div class="when">window ending {time.strftime("%H:%M:%S", time.gmtime(t.window_end_s))}Z '
               f'(#{t.seq}); trend: last {_age(t.window_end_s - t.t_from_s)} (at most 30 min) from '
               f'{time.strftime("%H:%M:%S", time.gmtime(t.t_from_s))}Z</div></section>')
    return "".join(out)


def _age(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else (f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h")


def tiles_html(tiles: list[Tile]) -> str:
    if not tiles:
        return '<p class="empty">No estimates yet.</p>'
    return "".join(_tile_html(t) for t in tiles)


def page(tiles: list[Tile]) -> str:
    legend = (f'<span style="color:{_COLORS["sbp"]}">SBP</span>, <span style="color:{_COLORS["dbp"]}">DBP</span>, '
              f'<span style="color:{_COLORS["map"]}">MAP (dashed)</span> of valid windows; grey: no valid window; '
              f'<span style="color:#1e8449">| calibration</span>, <span style="color:#d68910">: calibration '
              f'suggested</span>. Numbers only for a valid latest estimate (90 % interval = value +- 1.645 sd).')
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>bpstream board</title>'
            f'<style>{_STYLE}</style></head><body data-state="live"><h1>bpstream board</h1>'
            '<div class="sub">Estimated from ECG + PPG: research software, not a medical device. '
            f'<span id="note"></span></div><div class="legend">{legend}</div><br>'
            f'<div id="tiles">{tiles_html(tiles)}</div><script>{_SCRIPT}</script></body></html>')


def tiles_json(tiles: list[Tile]) -> list[dict]:
    """The tiles as JSON documents: the label only (the patient id itself never leaves when a bed is known)."""
    out = []
    for t in tiles:
        r = t.reading
        out.append({
            "label": t.label, "seq": t.seq, "status": t.status.value, "validity": t.validity.value,
            "reasons": list(t.reasons),
            "reading": None if r is None else {
                n: None if q is None else {"value_mmhg": q.value_mmhg, "lo90_mmhg": q.lo90_mmhg, "hi90_mmhg": q.hi90_mmhg}
                for n, q in (("sbp", r.sbp), ("dbp", r.dbp), ("map", r.map))},
            "quality": {"ecg": t.ecg_quality, "ppg": t.ppg_quality, "input_usable": t.input_usable,
                        "input_reasons": list(t.input_reasons)},
            "calibration": {"count": t.calibration_count, "age_s": t.calibration_age_s},
            "since_published_s": t.since_published_s, "window_end_s": t.window_end_s, "t_from_s": t.t_from_s,
            "trend": [[[p.t_s, p.sbp_mmhg, p.dbp_mmhg, p.map_mmhg] for p in seg] for seg in t.segments],
            "gaps": [list(g) for g in t.gaps],
            "marks": [{"t_s": m.t_s, "kind": m.kind.value, "reason": m.reason} for m in t.marks],
        })
    return out
