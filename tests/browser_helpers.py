"""What the browser tests share: Debian's chromium and the flags it runs with here.

Never `playwright install`: the machine has no network for a test tool's own browser.
"""

import shutil

#: Debian's chromium (apt-get install chromium chromium-driver), or None.
CHROMIUM = shutil.which("chromium")

#: Headless, and nothing that reaches for the network (its connections are refused here).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
