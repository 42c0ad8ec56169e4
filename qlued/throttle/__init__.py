"""Failed token attempts per client address, counted across workers and hosts (issue 13).

Counts live in Django's database by default (one row per address and minute, bumped
by one atomic upsert), or in the cache framework when `CACHE_URL` names a shared cache
such as Redis. A valid token is never refused for them: only wrong ones are counted,
and only wrong ones get 429.
"""
