"""Sliding-window counters, the bounded LRU, per-client rate limits, and Falco feedback.

Covers: the two-bucket window estimate (full count inside the window, weighted overlap after one
window, zero after two); the LRU evicts the least recently used key and counts evictions; token
buckets refill at their rate and are per client; Falco's "hot restart failure" internal alert becomes
FalcoReloadFailed naming the host and message; an alert of a rule the published ruleset knows but
does not run becomes FalcoRulesetStale; other internal and running-rule alerts give nothing.
"""

from __future__ import annotations

from padlock.policy.tuning.alerts import from_json
from padlock.policy.tuning.feedback import RELOAD_FAILED, STALE, RulesetView, assess
from padlock.policy.tuning.window import Lru, RateLimiter, WindowCounter
from support_alerts import falco_alert, reload_failure


def test_the_window_counter_forgets_gradually_then_entirely() -> None:
    c = WindowCounter(0.0, 60.0)
    for _ in range(10):
        c.add(0.0, 60.0)
    assert c.value(30.0, 60.0) == 10
    assert c.value(90.0, 60.0) == 5  # previous bucket half overlaps the window
    assert c.value(200.0, 60.0) == 0


def test_the_lru_evicts_the_least_recently_used_key() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.get_or_add("a", lambda: 1)
    lru.get_or_add("b", lambda: 2)
    lru.get("a")
    lru.get_or_add("c", lambda: 3)
    assert "b" not in lru and "a" in lru and "c" in lru and lru.evicted == 1


def test_rate_limits_refill_and_are_per_client() -> None:
    r = RateLimiter(rate=10, burst=20)
    assert r.allow("a", 0.0, cost=20)
    assert not r.allow("a", 0.0, cost=1)
    assert r.allow("b", 0.0, cost=20)
    assert r.allow("a", 1.0, cost=10)
    assert not r.allow("a", 1.0, cost=1)


def test_a_refused_hot_reload_is_reported_with_host_and_message() -> None:
    fb = assess(from_json(reload_failure("LOAD_ERR_COMPILE_CONDITION in padlock.yaml")), None)
    assert fb is not None and fb.reason == RELOAD_FAILED and fb.hostname == "node-2"
    assert "node-2" in fb.message and "LOAD_ERR_COMPILE_CONDITION in padlock.yaml" in fb.message


def test_an_alert_of_a_rule_the_published_ruleset_does_not_run_means_falco_is_stale() -> None:
    view = RulesetView(running=frozenset({"A"}), known=frozenset({"A", "Terminal shell in container"}))
    fb = assess(from_json(falco_alert()), view)
    assert fb is not None and fb.reason == STALE and fb.rule == "Terminal shell in container"
    assert assess(from_json(falco_alert(rule="A")), view) is None
    assert assess(from_json(falco_alert(rule="Not Padlock's")), view) is None


def test_other_internal_messages_give_no_feedback() -> None:
    drop = reload_failure()
    drop["rule"] = "Falco internal: syscall event drop"
    assert assess(from_json(drop), RulesetView()) is None
