"""Video metadata from its source (YouTube), never from clients.

- :mod:`app.sources.youtube`: the HTTP client (Data API v3 with a key, oEmbed
  without) and the parsed :class:`~app.sources.youtube.VideoMetadata`; no ORM, no
  GraphQL.
- :mod:`app.sources.language`: the language of a text, when the video declares none.
- :mod:`app.sources.queue`: what is due (from database columns), fetching it in
  batches with retries and a daily quota, writing it; run by the server in the
  background and by ``sunrank refresh-metadata``.
"""
