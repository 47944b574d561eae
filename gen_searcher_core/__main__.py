"""``python -m gen_searcher_core`` is the ``gen-searcher`` command line."""

from gen_searcher_core.commands import main

main()
