"""The edge: single-purpose ASGI middlewares in front of ``/graphql``, each applying
to HTTP requests and WebSocket sessions alike (their order: app.main.edge_middleware).

- ``log``: request id, one log line and one metrics sample per request or session;
- ``ratelimit``: per-address and per-user limits on requests and WebSocket operations;
- ``body``: body and message size, well-formed JSON, bounded nesting;
- ``auth``: bearer token → viewer (and the ``connection_init`` token of a WebSocket);
- ``websocket``: connections per address, operations per connection, idle and slow
  clients.

GraphQL-level limits (document size, depth, aliases, cost) live in app.schema.
"""
