"""The ``gen-searcher`` command line.

Sub-commands live next to the code they drive and are attached here. Keep
imports of heavy libraries (torch, diffusers, verl) inside command functions
so that ``gen-searcher --help`` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(name="gen-searcher", help="Search-grounded image generation tools.", no_args_is_help=True)

# Sub-command registration (one line per area).
