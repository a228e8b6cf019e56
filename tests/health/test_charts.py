"""Server-side SVG charts: valid XML, the numbers written out, labels escaped."""

from __future__ import annotations

from lxml import etree

from trustcircle.health.charts import MAX_BARS, VERDICT_COLORS, bar_chart, donut_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> etree._Element:
    root = etree.fromstring(svg.encode("utf-8"), etree.XMLParser(resolve_entities=False))
    assert root.tag == f"{SVG}svg"
    return root


def values(root: etree._Element, cls: str) -> dict[str, int]:
    return {
        str(g.get("data-label")): int(str(g.get("data-value")))
        for g in root.iter(f"{SVG}g")
        if g.get("class") == cls
    }


def texts(root: etree._Element) -> list[str]:
    return ["".join(str(x) for x in t.itertext()) for t in root.iter(f"{SVG}text")]


def test_bar_chart_is_svg_with_one_bar_and_its_count_per_item() -> None:
    root = parse(bar_chart("Signed records by type", [("sys_script", 7), ("sysauto_script", 2)]))
    assert root.findtext(f"{SVG}title") == "Signed records by type"
    assert values(root, "bar") == {"sys_script": 7, "sysauto_script": 2}
    shown = texts(root)
    assert "7" in shown
    assert "2" in shown
    widths = [float(str(r.get("width"))) for r in root.iter(f"{SVG}rect")]
    assert widths[0] > widths[1] > 0  # the bigger count draws the longer bar
    assert "sys_script 7" in str(root.get("aria-label"))


def test_donut_chart_shows_every_count_and_the_total() -> None:
    items = [("valid", 5), ("invalid", 1), ("missing", 0), ("orphan", 2)]
    root = parse(donut_chart("Records by verdict", items, colors=VERDICT_COLORS))
    assert values(root, "legend") == dict(items)
    assert values(root, "slice") == {"valid": 5, "invalid": 1, "orphan": 2}  # no empty slice
    total = [t for t in root.iter(f"{SVG}text") if t.get("class") == "total"]
    assert [t.text for t in total] == ["8"]
    slice_colors = {
        g.get("data-label"): g.find(f"{SVG}circle").get("stroke")  # type: ignore[union-attr]
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "slice"
    }
    assert slice_colors["valid"] == VERDICT_COLORS["valid"]


def test_script_in_a_label_stays_text() -> None:
    label = '<script>alert("x")</script>&\x00\x1b'
    for svg in (bar_chart("t", [(label, 1)]), donut_chart("<b>t</b>", [(label, 1)])):
        root = parse(svg)
        assert not [e for e in root.iter() if etree.QName(e).localname in ("script", "b")]
        labels = {g.get("data-label") for g in root.iter(f"{SVG}g") if g.get("data-label")}
        assert labels == {'<script>alert("x")</script>&'}  # NUL and ESC dropped: not XML


def test_many_items_fold_into_other() -> None:
    items = [(f"app{n:02}", 100 - n) for n in range(MAX_BARS + 5)]
    root = parse(bar_chart("Signed records by application", items))
    bars = values(root, "bar")
    assert len(bars) == MAX_BARS
    folded = items[MAX_BARS - 1 :]
    assert bars[f"other ({len(folded)})"] == sum(v for _, v in folded)


def test_empty_charts_say_no_data() -> None:
    bar = parse(bar_chart("Signed records by type", []))
    assert "no data" in texts(bar)
    donut = parse(donut_chart("MID servers", [("active", 0), ("inactive", 0)]))
    assert [t.text for t in donut.iter(f"{SVG}text") if t.get("class") == "total"] == ["0"]
    assert values(donut, "slice") == {}
