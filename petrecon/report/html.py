"""Self-contained HTML: escaped text, tables, embedded PNG figures, no external JS or CSS.

Every function returns :class:`Html`, a ``str`` that is already markup; anything
else given as content (a ``str``, a number, None) is text and is escaped, so a
phantom name or a file path can never inject markup into a report. Figures are
embedded as base64 ``data:`` URIs: the page opens on a machine without the PNGs.

Examples
--------
>>> page = document("Run <1>", section("Parameters", key_value_table({"scanner": "mmr", "a<b": 2})))
>>> "<title>Run &lt;1&gt;</title>" in page and "<th>a&lt;b</th>" in page
True
"""

from __future__ import annotations

import base64
import datetime as dt
import html as _html
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from petrecon import __version__
from petrecon.io.atomic import atomic_output

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
.pass { color: #11702a; font-weight: 600; } .fail { color: #b3261e; font-weight: 600; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #555; }
footer { margin-top: 2em; font-size: .85em; color: #666; }
"""


class Html(str):
    """A string that is markup already (never escaped again)."""


def escape(value: object) -> Html:
    """``value`` as HTML: markup kept, anything else converted to text and escaped.

    Examples
    --------
    >>> escape('<script>"x"</script>')
    '&lt;script&gt;&quot;x&quot;&lt;/script&gt;'
    >>> escape(Html("<b>kept</b>"))
    '<b>kept</b>'
    """
    if isinstance(value, Html):
        return value
    return Html(_html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[object]) -> Html:
    """Concatenate fragments (text parts escaped)."""
    return Html("\n".join(escape(part) for part in parts))


def paragraph(*parts: object) -> Html:
    """One ``<p>`` of text and markup fragments."""
    return Html("<p>" + "".join(escape(part) for part in parts) + "</p>")


def verdict(passes: bool, yes: str = "pass", no: str = "fail") -> Html:
    """A coloured pass / fail word."""
    return Html(f'<span class="{"pass" if passes else "fail"}">{escape(yes if passes else no)}</span>')


def _cell(value: object, tag: str) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<{tag} class="num">{escape(value)}</{tag}>' if numeric and tag == "td" else f"<{tag}>{escape(value)}</{tag}>"


def table(header: Iterable[object], rows: Iterable[Iterable[object]], *, caption: str | None = None) -> Html:
    """A table; numbers are right-aligned (format them before, e.g. ``f"{rc:.3f}"``, to fix the digits).

    Examples
    --------
    >>> print(table(["d (mm)", "RC"], [[10, "0.42"]]))
    <table>
    <tr><th>d (mm)</th><th>RC</th></tr>
    <tr><td class="num">10</td><td>0.42</td></tr>
    </table>
    """
    lines = ["<table>"]
    if caption:
        lines.append(f"<caption>{escape(caption)}</caption>")
    lines.append("<tr>" + "".join(_cell(h, "th") for h in header) + "</tr>")
    lines += ["<tr>" + "".join(_cell(v, "td") for v in row) + "</tr>" for row in rows]
    lines.append("</table>")
    return Html("\n".join(lines))


def key_value_table(items: Mapping[str, object], *, caption: str | None = None) -> Html:
    """A two-column table: one row per key (keys are text, values text or markup)."""
    lines = ["<table>"]
    if caption:
        lines.append(f"<caption>{escape(caption)}</caption>")
    lines += [f"<tr><th>{escape(key)}</th>{_cell(value, 'td')}</tr>" for key, value in items.items()]
    lines.append("</table>")
    return Html("\n".join(lines))


def png_figure(png: bytes | str | os.PathLike, alt: str, *, caption: str | None = None) -> Html:
    """A figure with the PNG embedded as a base64 ``data:`` URI (``png``: bytes or a file to read)."""
    data = png if isinstance(png, bytes) else Path(png).read_bytes()
    if not data.startswith(b"\x89PNG"):
        raise ValueError("png_figure embeds PNG images only")
    source = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    text = f'<figure><img src="{source}" alt="{escape(alt)}">'
    if caption:
        text += f"<figcaption>{escape(caption)}</figcaption>"
    return Html(text + "</figure>")


def section(title: str, *body: object) -> Html:
    """An ``<h2>`` section of fragments."""
    return Html(f"<section>\n<h2>{escape(title)}</h2>\n{join(body)}\n</section>")


def document(title: str, *body: object) -> Html:
    """A complete page: inline style, the title as ``<h1>``, the fragments, a footer naming the software."""
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Html(f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="petrecon {escape(__version__)}">
<title>{escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
{join(body)}
<footer>petrecon {escape(__version__)}, {escape(created)}</footer>
</body>
</html>
""")


def write_html(path: str | os.PathLike, page: str, *, overwrite: bool = False) -> Path:
    """Write ``page`` (UTF-8) to ``path`` atomically; an existing file only with ``overwrite``."""
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path
