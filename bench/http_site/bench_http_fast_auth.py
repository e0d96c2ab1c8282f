"""An experiment for bench/http_api.py (``--sessions cache+user``), not Wuye's setting.

What a logged-in request would save if, on top of cached_db sessions on Redis, Django's
authentication read the user from the same shared cache instead of the database, and the
Redis cache reused one client object per connection pool (Django's ``RedisCacheClient``
builds a new ``redis.Redis`` — and its table of ~170 response callbacks — for every cache
operation). See docs/payments-speed.md ("Sessions") for why this is not the production
setting as is.

- ``CachedUserBackend.get_user``: the user from the cache (pickled model instance, expiry
  ``USER_TTL`` seconds), else from the database as ``ModelBackend`` does; every save or
  delete of a user drops its entry (signals), so a deactivation, a password change or a
  superuser flag set through the ORM's ``save()`` takes effect on the next request in every
  worker. A change that bypasses ``save()`` (``QuerySet.update``, raw SQL) waits for the
  expiry. Django still checks the session's password hash against the (cached) user.
- ``ReusedClientRedisCache``: RedisCache whose client objects are made once per pool.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.db.models.signals import post_delete, post_save

USER_TTL = 60


def _key(user_id: Any) -> str:
    return f"auth:user:{user_id}"


class CachedUserBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        user = cache.get(_key(user_id))
        if user is None:
            user = super().get_user(user_id)
            if user is None:
                return None
            cache.set(_key(user_id), user, USER_TTL)
        return user if self.user_can_authenticate(user) else None


def _drop(sender: Any, instance: Any, **kwargs: Any) -> None:
    cache.delete(_key(instance.pk))


post_save.connect(_drop, sender=get_user_model(), dispatch_uid="bench_cached_user_save")
post_delete.connect(_drop, sender=get_user_model(), dispatch_uid="bench_cached_user_delete")


class _ReusedClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        base: Any = self  # Django's private helpers (not in django-stubs)
        index = base._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = base._get_connection_pool(write)
            client = self._clients[index] = base._client(connection_pool=pool)
        return client


class ReusedClientRedisCache(RedisCache):
    def __init__(self, server: Any, params: Any) -> None:
        super().__init__(server, params)
        self._class = _ReusedClient
