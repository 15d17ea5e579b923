"""Pages in a real browser (conftest's ``browser``): logging in through Airflow's own login page."""

from __future__ import annotations


def airflow_login(browser, url: str, user: str, password: str, **context):
    """A fresh browser session that opens ``url``, is sent to Airflow's login page, logs in as
    ``user`` and is sent back to ``url``; ``context``: the browser context's options (viewport, locale)."""
    page = browser.new_context(**context).new_page()
    page.goto(url)
    # not logged in: Airflow's login page, reached through redirects. Its form is waited for, not its
    # address: a wait for the address failed when the browser aborted a redirect on the way
    # ("net::ERR_ABORTED; maybe frame was detached?", a CI run on a fresh clone, once); a locator's
    # wait goes on across navigations
    page.locator("input[type=password]").wait_for(timeout=30_000)
    assert "/auth/login" in page.url, f"a password field outside Airflow's login page: {page.url}"
    page.locator("input:not([type=password])").first.fill(user)
    page.locator("input[type=password]").fill(password)
    page.locator("button[type=submit]").click()
    # back at ``url``, off the login page: a pattern "<url>**" for a site's root ("<base>/") already
    # matches the login page itself, and the redirect back then interrupted the caller's next goto
    page.wait_for_url(lambda at: at.startswith(url) and "/auth/login" not in at, timeout=30_000)
    page.wait_for_load_state()
    return page
