"""``fastnn playground``: the Neural Network Playground in the browser, trained by fastnn."""

from __future__ import annotations

import argparse
import sys


def add_parser(commands) -> argparse.ArgumentParser:
    play = commands.add_parser(
        "playground",
        help="the Neural Network Playground in the browser",
        description="Start a local web server with the Neural Network Playground (toy data sets, "
        "features, layers, activations, regularisation, optimizers, live decision boundary), "
        "trained by fastnn in a background thread, and open it in the web browser. Ctrl-C stops it.",
    )
    play.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: loopback only; 0.0.0.0 opens it to the network)",
    )
    play.add_argument("--port", type=int, default=8000, help="port to listen on (0 picks a free one)")
    play.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    return play


def run(args) -> int:
    from ..playground import Playground

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    playground = Playground(host=args.host, port=args.port)
    print(f"fastnn playground: serving on {playground.url} (Ctrl-C stops it)", file=sys.stdout, flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(playground.url)
    playground.serve_until_interrupted()
    print("fastnn playground: stopped", file=sys.stdout, flush=True)
    return 0
