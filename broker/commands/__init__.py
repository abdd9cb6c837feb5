"""Subcommands of ``carebroker``; each module has ``register(subparsers)``."""
