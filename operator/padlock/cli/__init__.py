"""The ``padlock`` command: one module per subcommand, wired lazily by ``padlock.cli.main``."""
