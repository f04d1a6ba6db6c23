"""State changes out to the user's systems: a durable outbox in the catalog, sent as signed webhooks."""
