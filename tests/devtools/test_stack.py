"""The local stack's preparation of the feature repo."""

import shutil

import pytest
import redis as redis_py

from devtools import stack

pytestmark = pytest.mark.integration


def test_a_fresh_redis_gets_every_user_although_the_registry_remembers_a_run(
    redis_features, tmp_path
):
    """`make run` on Redis a second time: the registry recorded the first materialization,
    but the new redis-server (no persistence) is empty; incremental materialization would
    leave it empty and every prediction would be the business-rule default."""
    repo = shutil.copytree(redis_features.repo, tmp_path / "feature_repo")
    with stack.redis_server() as fresh:
        stack.prepare_features(stack.FeatureEnv(repo, fresh.connection_string))
        client = redis_py.Redis(port=fresh.port)
        try:
            assert client.dbsize() >= 2000  # one hash per materialized user
        finally:
            client.close()
