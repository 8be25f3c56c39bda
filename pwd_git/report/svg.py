"""Inline SVG charts drawn in Python: no script, no plotting library, nothing fetched.

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies), and series differ by dash pattern too; the heatmap uses viridis. Every drawn
point is a `<circle class="pt" data-series=...>` with a `<title>` tooltip, so a test (or a
person) can count what was drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

OKABE_ITO = {"blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "vermillion": "#D55E00",
             "purple": "#CC79A7", "sky": "#56B4E9", "black": "#000000", "yellow": "#F0E442"}
PASS, FAIL = OKABE_ITO["green"], OKABE_ITO["vermillion"]
MISSING = "#e6e6e6"
_VIRIDIS = ("#440154", "#482878", "#3e4a89", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725")


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str
    dash: str = ""  # stroke-dasharray


@dataclass(frozen=True)
class Mark:
    """One point of a series: position, value, tooltip, and the commit it stands for."""

    x: float
    y: float
    title: str
    commit: str


def _attrs(attrs: dict) -> str:
    return "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(str(v), quote=True)}"' for k, v in attrs.items()
                   if v is not None)


def el(tag: str, children: str = "", **attrs) -> str:
    return f"<{tag}{_attrs(attrs)}>{children}</{tag}>"


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def viridis(t: float) -> str:
    """The viridis colour of t in [0, 1] (linear between ten stops)."""
    t = min(1.0, max(0.0, t)) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    a, b, f = _VIRIDIS[i], _VIRIDIS[i + 1], t - i
    return "#" + "".join(f"{round(int(a[k:k + 2], 16) * (1 - f) + int(b[k:k + 2], 16) * f):02x}" for k in (1, 3, 5))


@dataclass(frozen=True)
class Frame:
    """The plot area of a chart and its scales: x over commit positions, y over [0, y_max]."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x_max: float
    y_max: float

    def sx(self, x: float) -> float:
        span = self.width - self.left - self.right
        return self.left + (span / 2 if self.x_max <= 0 else x / self.x_max * span)

    def sy(self, y: float) -> float:
        return self.height - self.bottom - (y / self.y_max if self.y_max else 0) * (self.height - self.top - self.bottom)


def _axes(f: Frame, y_ticks: Sequence[float], y_label: Callable[[float], str], x_ticks: Sequence[tuple[float, str]]) -> str:
    parts = []
    for y in y_ticks:
        parts.append(el("line", x1=f.left, x2=f.width - f.right, y1=_fmt(f.sy(y)), y2=_fmt(f.sy(y)), class_="grid"))
        parts.append(el("text", escape(y_label(y)), x=f.left - 6, y=_fmt(f.sy(y) + 4), class_="tick", text_anchor="end"))
    base = f.height - f.bottom
    for x, label in x_ticks:  # a label's lines stack (commit over date), centred under its tick
        lines = "".join(el("tspan", escape(text), x=_fmt(f.sx(x)), dy="0" if i == 0 else "1.15em")
                        for i, text in enumerate(label.split("\n")))
        parts.append(el("line", x1=_fmt(f.sx(x)), x2=_fmt(f.sx(x)), y1=base, y2=base + 4, class_="axis"))
        parts.append(el("text", lines, x=_fmt(f.sx(x)), y=base + 15, class_="tick", text_anchor="middle"))
    parts.append(el("line", x1=f.left, x2=f.width - f.right, y1=base, y2=base, class_="axis"))
    return "".join(parts)


def _legend(f: Frame, series: Sequence[Series]) -> str:
    parts, x = [], f.width - f.right + 16
    for i, s in enumerate(series):
        y = f.top + 8 + i * 20
        parts.append(el("line", x1=x, x2=x + 22, y1=y, y2=y, stroke=s.colour, stroke_width=2.5,
                        stroke_dasharray=s.dash or None))
        parts.append(el("circle", cx=x + 11, cy=y, r=3.5, fill=s.colour, class_="key"))
        parts.append(el("text", escape(s.label), x=x + 28, y=y + 4, class_="label"))
    return el("g", "".join(parts), class_="legend")


def line_chart(chart_id: str, title: str, series: Sequence[Series], marks: dict[str, list[Mark]], *, x_max: float,
               x_ticks: Sequence[tuple[float, str]], y_max: float = 1.0, y_ticks: Sequence[float] = (0, .25, .5, .75, 1),
               y_label: Callable[[float], str] = lambda y: f"{y:.2f}", strip: Sequence[tuple[float, int, int, str]] = (),
               width: int = 960, height: int = 280) -> str:
    """Lines with a circle per mark; `strip` adds a verdict row under the plot: (x, results,
    failed, tooltip) per point, a short green bar when all passed, a tall vermillion one when any failed."""
    extra = 26 if strip else 0
    f = Frame(width, height + extra, 56, 130, 14, 40 + extra, x_max, y_max)
    parts = [el("title", escape(title)), _axes(f, y_ticks, y_label, x_ticks)]
    shown = [s for s in series if marks.get(s.key)]
    for s in shown:
        pts = marks[s.key]
        path = " ".join(f"{'M' if i == 0 else 'L'}{_fmt(f.sx(m.x))},{_fmt(f.sy(m.y))}" for i, m in enumerate(pts))
        circles = "".join(el("circle", el("title", escape(m.title)), cx=_fmt(f.sx(m.x)), cy=_fmt(f.sy(m.y)), r=3,
                             fill=s.colour, class_="pt", data_series=s.key, data_commit=m.commit) for m in pts)
        parts.append(el("g", el("path", d=path, fill="none", stroke=s.colour, stroke_width=2,
                                stroke_dasharray=s.dash or None) + circles, class_="series", data_series=s.key))
    if strip:
        y0 = height + extra - 22
        parts.append(el("text", "verdict", x=f.left - 6, y=y0 + 2, class_="tick", text_anchor="end"))
        span = (width - f.left - f.right) / max(1, len(strip))
        w = max(1.5, min(10.0, span * 0.8))
        bars = []
        for x, _n, failed, tip in strip:
            h, colour = (16, FAIL) if failed else (6, PASS)
            bars.append(el("rect", el("title", escape(tip)), x=_fmt(f.sx(x) - w / 2), y=_fmt(y0 + 8 - h), width=_fmt(w),
                           height=h, fill=colour, class_="verdict " + ("fail" if failed else "pass")))
        parts.append(el("g", "".join(bars), class_="verdicts"))
    parts.append(_legend(f, shown))
    return el("svg", "".join(parts), id=chart_id, viewBox=f"0 0 {width} {height + extra}", role="img",
              aria_label=title, class_="chart", xmlns="http://www.w3.org/2000/svg")


def heatmap(chart_id: str, title: str, rows: Sequence[tuple[str, str | None]], columns: Sequence[tuple[str, str]],
            cells: dict[tuple[int, int], tuple[float, str]], *, label_width: int = 190) -> str:
    """rows: (label, link); columns: (short label, tooltip); cells: (row, column) -> (value in
    [0, 1], tooltip). A missing cell is light grey: no item of that concept was scored there.
    Rows are 14 px high; columns wider (up to 28 px) when there are few."""
    cw, rh = max(14, min(28, 760 // max(1, len(columns)))), 14
    top, legend_h = 12, 46
    width = label_width + max(max(1, len(columns)) * cw, 290) + 20  # room for the colour legend
    height = top + len(rows) * rh + legend_h + 20
    parts = [el("title", escape(title))]
    for r, (label, link) in enumerate(rows):
        text = el("text", escape(label if len(label) <= 28 else label[:27] + "…"), x=label_width - 6,
                  y=top + r * rh + rh - 3, class_="label", text_anchor="end")
        parts.append(el("a", text, href=link) if link else text)
    rects = []
    for r in range(len(rows)):
        for c, (_short, tip) in enumerate(columns):
            value = cells.get((r, c))
            fill = viridis(value[0]) if value else MISSING
            rects.append(el("rect", el("title", escape(value[1] if value else f"{rows[r][0]} · {tip}: not scored")),
                            x=label_width + c * cw, y=top + r * rh, width=cw - 1, height=rh - 1, fill=fill,
                            class_="cell"))
    parts.append(el("g", "".join(rects), class_="cells"))
    base = top + len(rows) * rh
    step = -(-64 // cw)  # a label every 64 px or more: seven characters never overlap
    for c in range(0, len(columns), step):
        parts.append(el("text", escape(columns[c][0]), x=label_width + c * cw + cw / 2, y=base + 14, class_="tick",
                        text_anchor="middle"))
    stops = "".join(el("stop", offset=f"{i / (len(_VIRIDIS) - 1):.2f}", stop_color=c) for i, c in enumerate(_VIRIDIS))
    parts.append(el("defs", el("linearGradient", stops, id=f"{chart_id}-scale")))
    ly = base + 26
    parts.append(el("rect", x=label_width, y=ly, width=160, height=10, fill=f"url(#{chart_id}-scale)"))
    parts.append(el("text", "0", x=label_width, y=ly + 22, class_="tick", text_anchor="middle"))
    parts.append(el("text", "accuracy", x=label_width + 80, y=ly + 22, class_="tick", text_anchor="middle"))
    parts.append(el("text", "1", x=label_width + 160, y=ly + 22, class_="tick", text_anchor="middle"))
    parts.append(el("rect", x=label_width + 190, y=ly, width=10, height=10, fill=MISSING))
    parts.append(el("text", "not scored", x=label_width + 206, y=ly + 9, class_="tick"))
    return el("svg", "".join(parts), id=chart_id, viewBox=f"0 0 {width} {height}", role="img", aria_label=title,
              class_="heatmap", style=f"max-width:{width}px", xmlns="http://www.w3.org/2000/svg")
