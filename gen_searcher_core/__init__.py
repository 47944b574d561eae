"""The base layer every area may import: the error tree, config loading, the command root, shared helpers.

It imports none of the other project packages (import-linter keeps it so).
"""
