"""`charrnn inspect`'s report opened from disk in Chromium: choosing a unit recolours the text, hovering a
character shows its five likeliest successors, and the page logs no error."""

import json
import re

from conftest import run_main


def test_the_report_recolours_shows_the_alternatives_and_logs_no_error(browser, tiny_run, anna_50k, tmp_path):
    out = tmp_path / "report.html"
    done = run_main("inspect", tiny_run, anna_50k, "--chars", "3000", "-o", out)
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html  # nothing fetched: no CDN
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)[1])
    assert len(data["text"]) == 3000 and data["all_units"] and len(data["samples"]) == 3
    classes = {row["name"]: row for row in data["versus"]["classes"]}
    assert data["versus"]["order"] == 20 and classes["lower-case letter"]["count"] > 1000
    assert 0 < classes["lower-case letter"]["model"] < 5 and 0 < classes["lower-case letter"]["ngram"] < 5
    page = browser.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(out.as_uri())
    spans = page.locator("#text span")
    assert spans.count() == 3000
    before = [spans.nth(i).evaluate("s => s.style.background") for i in range(50)]
    page.select_option("#layer", "2")
    page.fill("#unit", "7")
    page.dispatch_event("#unit", "change")
    after = [spans.nth(i).evaluate("s => s.style.background") for i in range(50)]
    assert after != before and "layer 2, unit 7" in page.text_content("#status")
    spans.nth(100).hover()
    alternatives = page.locator("#tip .alt b").all_text_contents()
    assert len(alternatives) == 5 and sum(map(float, alternatives)) <= 1.0 + 5 * 0.002
    assert list(map(float, alternatives)) == sorted(map(float, alternatives), reverse=True)
    page.select_option("#view", "surprisal")
    assert "loss" in page.text_content("#status")
    assert page.locator("#saturation svg").count() == 2 * 3  # two layers, three gates
    assert page.locator("table.versus").count() == 2 and "20-gram" in page.text_content("#versus")
    assert errors == []
    page.close()
