"""Sphinx configuration of the course website (built by ``make book``; see kdtutor/book.py).

Sphinx + MyST-NB + the Sphinx Book Theme: the toolchain Jupyter Book 1 wraps, used directly.
Everything the pages load is local: MathJax comes from sphinx-mathjax-offline, and the
ipywidgets loader (which MyST-NB would fetch from a CDN) is switched off — widget outputs
show their text form.
"""

from coursetools.delivery import config

_cfg = config()

project = "kdtutor"
author = "the kdtutor authors"
LICENCE_NOTE = ("Code under the MIT licence; lesson text and figures under CC BY 4.0 "
                "(see LICENSE and LICENSE-CONTENT in the repository).")
copyright = f"2026, the kdtutor authors. {LICENCE_NOTE}"
extensions = ["myst_nb", "sphinx-mathjax-offline"]
myst_enable_extensions = ["dollarmath", "amsmath"]
nb_execution_mode = "off"  # the lessons were executed by the course run
nb_ipywidgets_js = {}  # no CDN scripts: the site works offline
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["mystnb.unknown_mime_type", "misc.highlighting_failure"]

html_theme = "sphinx_book_theme"
html_title = "kdtutor"
html_theme_options = {
    "repository_url": f"https://github.com/{_cfg['repository']}",
    "repository_branch": _cfg["branch"],
    "path_to_docs": "notebooks",  # the pages are the lessons in notebooks/
    "launch_buttons": {"colab_url": "https://colab.research.google.com", "binderhub_url": "https://mybinder.org"},
    "use_repository_button": True,
    "extra_footer": f'<p>{LICENCE_NOTE} <a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a></p>',
}
# The theme's default colour mode; left empty, pydata-sphinx-theme logs a console error
# ("Got invalid theme mode") on a first visit.
html_context = {"default_mode": "light"}
