"""The one online-store factory: the config names the backend, an unknown one names the choices."""

from __future__ import annotations

import pytest

from mlray.config import load_settings
from mlray.errors import ConfigError
from mlray.online import open_online_store, pin_online_store


def test_unknown_backend_is_a_config_error_naming_the_choices():
    s = load_settings(config_file=None, redis={"url": "redis://127.0.0.1:1"})
    odd = s.model_copy(update={"redis": s.redis.model_copy(update={"type": "memcached"})})
    with pytest.raises(ConfigError, match=r"'memcached'.*redis\.type.*'redis'"):
        open_online_store(odd)


def test_a_configured_url_is_used_as_is():
    s = load_settings(config_file=None, redis={"url": "redis://127.0.0.1:1"})
    assert pin_online_store(s) is s
    store = open_online_store(s)  # connecting is lazy: nothing is reached yet
    assert store.target.url == "redis://127.0.0.1:1" and store.target.timeout_s == 0.5
    assert open_online_store(s, bulk_writes=True).target.timeout_s == s.redis.write_timeout_s
