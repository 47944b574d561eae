"""Gen-Searcher test suite (a package so that `tests.support` wins over the `tests` package verl installs)."""
