"""A small, dependency-free web server for fastnn's pages (the playground, the dashboard).

The standard library's threading HTTP server with JSON routes, static files served only
from one package folder, and Server-Sent Events fanned out to any number of tabs.
"""

from fastnn.web.events import EventStream
from fastnn.web.server import HTTPError, Request, WebServer

__all__ = ["EventStream", "HTTPError", "Request", "WebServer"]
