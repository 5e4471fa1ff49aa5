"""MkDocs hook: serve MathJax with the site, so the tutorials' formulas render offline.

mkdocs-jupyter writes each tutorial page with a ``<script>`` that loads MathJax from
``custom_mathjax_url`` (mkdocs.yml), by default a CDN. That URL points instead at
``assets/mathjax/`` of the site, and after the build this hook copies MathJax 2.7's files
there from the ``jupyter-server-mathjax`` package (the ``docs`` extra), which ships them
for Jupyter servers without internet access.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: Where the files go, relative to the site's root.
SITE_FOLDER = Path("assets") / "mathjax"

#: A local configuration the pages load after MathJax's own (``config=...,local/fastnn`` in
#: mkdocs.yml): the package ships the STIX-Web fonts, not MathJax's default TeX ones.
LOCAL_CONFIG = """MathJax.Hub.Config({
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}
});
MathJax.Ajax.loadComplete("[MathJax]/config/local/fastnn.js");
"""


def mathjax_files() -> Path:
    """The folder of MathJax.js in the installed jupyter-server-mathjax package."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise RuntimeError(
            "mathjax hook: jupyter-server-mathjax is not installed; pip install -e '.[docs]'"
        ) from None
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def copy_mathjax(site_dir: Path) -> Path:
    """Copy MathJax into ``site_dir / SITE_FOLDER`` (replacing what is there); returns the folder."""
    target = Path(site_dir) / SITE_FOLDER
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(mathjax_files(), target)
    local = target / "config" / "local"
    local.mkdir(parents=True, exist_ok=True)
    (local / "fastnn.js").write_text(LOCAL_CONFIG, encoding="utf-8")
    return target


def on_post_build(config, **kwargs):
    """After the build: the MathJax files beside the pages that load them."""
    copy_mathjax(Path(config["site_dir"]))
