"""MkDocs hook: list every tutorial, docs/tutorials/NN_slug.py, under "Tutorials" in the nav.

The tutorials are written in parallel and named by the convention NN_slug.py (NN = 01..14, the
curriculum's order), so the nav is built from the files that exist rather than kept by hand.
Each entry's title is the first markdown heading of the script ("# # 1. Perceptrons ..."),
numbered by the file name when the heading has no number.
"""

from __future__ import annotations

import re
from pathlib import Path

TUTORIAL_GLOB = "[0-9][0-9]_*.py"
_HEADING = re.compile(r"^# #\s+(.+?)\s*$", re.MULTILINE)


def tutorial_title(path: Path) -> str:
    """The nav title: the script's first "# # Heading" line (its file name when it has none),
    numbered "N. Heading" by the file's NN unless the heading starts with a number already."""
    match = _HEADING.search(path.read_text(encoding="utf-8"))
    title = match.group(1) if match else path.stem
    return title if title[:1].isdigit() else f"{int(path.name[:2])}. {title}"


def tutorial_entries(docs_dir: Path) -> list[dict[str, str]]:
    """Nav entries {title: "tutorials/NN_slug.py"} for the tutorials in ``docs_dir``, in order."""
    paths = sorted((docs_dir / "tutorials").glob(TUTORIAL_GLOB))
    return [{tutorial_title(p): f"tutorials/{p.name}"} for p in paths]


def on_config(config, **kwargs):
    """Append the tutorials to the nav's "Tutorials" section."""
    for item in config["nav"] or []:
        if isinstance(item, dict) and "Tutorials" in item:
            item["Tutorials"] = list(item["Tutorials"]) + tutorial_entries(Path(config["docs_dir"]))
            return config
    raise ValueError('tutorials_nav hook: mkdocs.yml has no "Tutorials" section in its nav')


def on_page_markdown(markdown, page, config, files, **kwargs):
    """Replace the "<!-- tutorial list -->" marker in tutorials/index.md with a linked list."""
    if page.file.src_uri != "tutorials/index.md":
        return markdown
    entries = tutorial_entries(Path(config["docs_dir"]))
    lines = [f"- [{title}]({Path(path).name})" for entry in entries for title, path in entry.items()]
    return markdown.replace("<!-- tutorial list -->", "\n".join(lines))
