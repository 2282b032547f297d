"""Who is woken when an owned object changes: only changes a decision reads wake its owner."""

from __future__ import annotations

from modelgate.observe.wakeups import Wakeups

KEY = ("ns", "fraud-detector")


def _woken(w: Wakeups, seen: object | None, what: str = "Deployment") -> bool:
    event = w.register(KEY)
    event.clear()
    w.poke_if_changed(KEY, what, seen)
    return event.is_set()


def test_first_sight_of_an_owned_object_wakes_its_owner() -> None:
    assert _woken(Wakeups(), {"status": {"readyReplicas": 0}})


def test_an_event_that_changes_nothing_read_does_not_wake_the_owner() -> None:
    w = Wakeups()
    _woken(w, {"status": {"readyReplicas": 0}})

    assert not _woken(w, {"status": {"readyReplicas": 0}})


def test_a_change_wakes_the_owner() -> None:
    w = Wakeups()
    _woken(w, {"status": {"readyReplicas": 0}})

    assert _woken(w, {"status": {"readyReplicas": 1}})


def test_deletion_wakes_the_owner_and_a_recreated_object_wakes_it_again() -> None:
    w = Wakeups()
    _woken(w, {"status": {}})

    assert _woken(w, None)
    assert _woken(w, {"status": {}})


def test_deployment_and_service_of_one_owner_are_told_apart() -> None:
    w = Wakeups()
    _woken(w, {"spec": {}}, "Deployment")

    assert _woken(w, {"spec": {}}, "Service")
