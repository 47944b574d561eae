"""Search backends, safe fetching, extraction, the image store and the cache."""
