"""``python -m gen_searcher_core`` is the ``gen-searcher`` command line.

Guarded: worker processes import the main module again and must not run the CLI.
"""

from gen_searcher_core.commands import main

if __name__ == "__main__":
    main()
