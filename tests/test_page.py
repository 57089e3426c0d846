"""The served page in a real browser: Playwright driving Debian's Chromium, headless, against `charrnn serve`."""

import time

from test_serve import start_server, stop_server

from conftest import ARTIFACTS


def test_generate_streams_into_the_page_and_stop_frees_the_row(browser, tiny_run):
    server = start_server(tiny_run, "--max-length", 200_000)
    try:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("#card table")  # the model card from /info
        page.fill("#prime", "The ")
        page.fill("#length", "200000")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#generated').textContent.length > 0")
        first = len(page.text_content("#generated"))
        page.wait_for_function(f"document.querySelector('#generated').textContent.length > {first}")
        pieces = int(page.text_content("#status").split(" in ")[1].split()[0])
        assert pieces >= 2  # the text arrived in pieces, not at the end
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "page.png"), full_page=True)
        assert server.active_rows() == 1
        page.click("#stop")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('stopped')")
        deadline = time.monotonic() + 5
        while server.active_rows() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.active_rows() == 0
        page.close()
    finally:
        stop_server(server)


def test_a_refused_request_shows_its_message_not_json(browser, tiny_run):
    server = start_server(tiny_run, "--max-length", 100)
    try:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector("#card table")
        page.fill("#length", "5000")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('error')")
        status = page.text_content("#status")
        assert status.startswith("error: max_new_chars: ") and "100" in status, status
        assert "{" not in status and "[" not in status, status
        page.close()
    finally:
        stop_server(server)
