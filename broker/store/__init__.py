"""PostgreSQL: the message store, the outbox, deliveries and the audit trail (asyncpg)."""
