"""The learner at run time: the service thread, database I/O, the event-log
follower, refits and leader election. ``app.learner`` stays pure (no database,
asyncio or metrics); everything here wires it to the running server."""
