"""petrecon.report: HTML fragments escape text, embed figures, and the NEMA section shows every metric."""

from __future__ import annotations

import pytest

from petrecon.quant.nema import NemaResult, SphereResult
from petrecon.report.html import Html, document, key_value_table, png_figure, section, table, write_html
from petrecon.report.nema import earl_table, sphere_table, summary_table

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=1>'


def test_text_anywhere_is_escaped_and_markup_is_kept():
    page = document(HOSTILE, section(HOSTILE, table([HOSTILE], [[HOSTILE, 1.5]], caption=HOSTILE),
                                     key_value_table({HOSTILE: HOSTILE}), Html("<b>kept</b>")))
    assert "<script" not in page and "<img src=x" not in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img") == 8  # title, h1, h2, caption, th, td, key, value
    assert "<b>kept</b>" in page and '<td class="num">1.5</td>' in page


def test_figures_are_embedded_pngs_only(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(16)
    assert 'src="data:image/png;base64,iVBORw0KGgo' in png_figure(png, 'a "quoted" alt', caption="c")
    assert 'alt="a &quot;quoted&quot; alt"' in png_figure(png, 'a "quoted" alt')
    with pytest.raises(ValueError):
        png_figure(b"GIF89a", "not a png")


def test_write_html_is_atomic_and_refuses_to_overwrite(tmp_path):
    path = write_html(tmp_path / "r.html", document("t"))
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(Exception, match="overwrite"):
        write_html(path, document("t"))
    write_html(path, document("second"), overwrite=True)
    assert "<title>second</title>" in path.read_text(encoding="utf-8")


def _result(rc: float) -> NemaResult:
    spheres = [SphereResult(d, (0.0, 0.0, 0.0), rc * 10, rc * 8, rc * 9, rc, rc * 0.8, rc * 0.9, 1.0, 70.0, 2.0)
               for d in (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)]
    earl = {s: {"standard": s, "passes": False,
                "spheres": {m: {d: False for d in (10.0, 13.0, 17.0, 22.0, 28.0, 37.0)}
                            for m in ("rc_max", "rc_mean_a50")}} for s in ("earl1", "earl2")}
    return NemaResult(spheres, 1.0, 12.5, 10.0, 10.0, 15.0, earl)


def test_nema_tables_show_every_metric_band_and_verdict():
    result = _result(1.0)
    spheres = sphere_table(result)
    # RC max 1.0 lies in the EARL1 band of the 37 mm sphere (0.95-1.16) and EARL2's of the 28 mm (1.01-1.26: no)
    assert spheres.count("<tr>") == 7 and "1.000 [1]" in spheres and "Q_H (%)" in spheres
    bands = earl_table(result)
    assert "0.95-1.16" in bands and "0.39-0.61" in bands and bands.count('class="fail">FAIL') == 2
    summary = summary_table(result, truth_background=1.0)
    assert "12.5" in summary and "background mean / truth" in summary and summary.count("FAIL") == 2
