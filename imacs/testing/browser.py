"""How the browser tests and the report benchmark start headless Chromium.

They drive Debian's ``chromium`` package through Playwright: Playwright's own browser
downloads need the internet, which test machines may not have. The flags keep Chromium
from reaching out (updates, sync, background requests) and from needing a GPU or a
sandbox, so a report is measured and checked on its own.
"""

from __future__ import annotations

#: where Debian's chromium package puts the browser
CHROMIUM = "/usr/bin/chromium"
#: headless, no sandbox or GPU, and nothing fetched in the background
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: the window the report is opened in
VIEWPORT = {"width": 1400, "height": 1000}
