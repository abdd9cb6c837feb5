"""PostgreSQL, and the only code that speaks SQL: one store per concern (asyncpg).

``Context.stores`` (:mod:`broker.store.stores`) hands the stores out; every
failure is translated into ``broker/errors.py`` by :mod:`broker.store.db`.
docs/internals.md, "The store boundary", lists the stores and their tables.
"""
