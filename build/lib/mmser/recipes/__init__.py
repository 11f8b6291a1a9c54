"""Recipes: one file per job, composing the library (``cli -> recipes -> library``, never back).

Each recipe takes a validated config (``mmser.config.load_config``) and an output folder, runs its job,
and returns what it made; the CLI only parses arguments, calls a recipe and prints.
"""
