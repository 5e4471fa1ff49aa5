"""``fastnn playground``: the Neural Network Playground, trained by fastnn, in the browser.

:mod:`.datasets` and :mod:`.features` make the toy points and what the network sees of
them, :mod:`.settings` checks what the page asks for, :mod:`.session` trains and draws,
:mod:`.runner` is the training thread and :mod:`.app` the web routes (``static/`` holds
the page). docs/playground.md describes the page.
"""

from .app import Playground
from .session import Session

__all__ = ["Playground", "Session"]
