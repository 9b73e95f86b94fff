"""Accounts (issue 21): keys given one label share their limits; the label is checked, and hashed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from aioface import Client, ConfigurationError, LocalStore, MockResponse, MockTransport
from aioface.limits._persist import BudgetStore, budget_file
from aioface.limits._rate import account_digest, key_digest
from tests.support.cli import aioface
from tests.support.files import image_bytes


def make(key: str, store: LocalStore, **kw: object) -> Client:
    return Client(facestudio_key=key, limits_store=store, persist_limits=False, **kw)  # type: ignore[arg-type]


def test_bad_accounts_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(ConfigurationError, match="non-empty"):
        Client(accounts={"facestudio": "  "}, env={}, persist_limits=False)
    with pytest.raises(ConfigurationError, match="unknown provider"):
        Client(accounts={"nope": "acme"}, env={}, persist_limits=False)


def test_keys_of_one_account_share_one_limiter_and_the_label_is_never_shown() -> None:
    store = LocalStore()
    a = make("key-a", store, accounts={"facestudio": "acme"}, env={})
    b = make("key-b", store, env={"AIOFACE_FACESTUDIO_ACCOUNT": "acme"})
    other = make("key-c", store, env={"AIOFACE_FACESTUDIO_ACCOUNT": "acme"}, accounts={"facestudio": "zeta"})
    alone = make("key-d", store, env={})
    assert a.limiter("facestudio") is b.limiter("facestudio")
    assert other.limiter("facestudio") is not a.limiter("facestudio")  # the argument beats the environment
    assert alone.limiter("facestudio") is not a.limiter("facestudio")
    assert a._hub.budget_id("facestudio", "key-a") == account_digest("acme") != key_digest("acme")
    assert "acme" not in repr(a) + repr(a._config)


@pytest.mark.anyio
async def test_a_tier_learned_by_one_key_is_the_accounts(tmp_path: Path) -> None:
    def answer(req: object) -> MockResponse:
        headers = {"Content-Type": "image/jpeg", "X-User-Class": "Professional"}
        return MockResponse(200, headers=headers, content=image_bytes())

    kw = {"state_dir": tmp_path, "env": {}, "accounts": {"facestudio": "acme"}}
    async with Client(facestudio_key="key-a", transport=MockTransport(answer), **kw) as a:  # type: ignore[arg-type]
        await a.facestudio.generate(None)
    async with Client(facestudio_key="key-b", transport=MockTransport(answer), **kw) as b:  # type: ignore[arg-type]
        assert b.facestudio.tier == "professional"  # remembered for the account, not the key
    facts = BudgetStore(budget_file(tmp_path, "facestudio", account_digest("acme")), keep=0).load_meta()
    assert facts["tier"] == "professional" and facts["kind"] == "account"


def test_cli_limits_shows_the_account(tmp_path: Path) -> None:
    store = BudgetStore(budget_file(tmp_path, "facestudio", account_digest("acme")), keep=86400)
    store.append(time.time() - 10)
    store.save_meta({"tier": "basic", "kind": "account"})
    env = {**os.environ, "AIOFACE_CACHE_DIR": str(tmp_path), "AIOFACE_FACESTUDIO_KEY": "key-a", "COLUMNS": "200"}
    r = aioface("limits", "--json", "--account", "facestudio=acme", env=env)
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    assert (line["account"], line["current"], line["tier"]) == (True, True, "basic")
    table = aioface("limits", env=env)
    assert "account " + account_digest("acme") in table.stdout
    assert "acme" not in (r.stdout + table.stdout).replace(account_digest("acme"), "")
    bad = aioface("limits", "--account", "nope=acme", env=env)
    assert bad.returncode == 2 and "unknown provider" in bad.stderr
