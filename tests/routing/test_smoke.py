from __future__ import annotations

import pytest

from tests.routing.conftest import make_pool, make_rule


@pytest.mark.django_db
def test_round_robin_assigns(agents, post, web):
    a, b = agents(2)
    pool = make_pool([a, b])
    make_rule(pool=pool, sources=[web])
    owners = [post().owner for _ in range(4)]
    assert owners == [a, b, a, b]
