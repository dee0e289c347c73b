"""How the conformance suites report: every failing check at once, in one AssertionError."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def run_checks(subject: str, checks: Sequence[tuple[str, Callable[[], object]]]) -> None:
    """Run every ``(name, check)``; raise one ``AssertionError`` listing all that failed.

    ``subject`` names what was checked ("adapter 'torch'"). A check fails by raising
    ``AssertionError``, or any other exception (a contract violation the base class
    caught counts too).
    """
    failures = []
    for name, check in checks:
        try:
            check()
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
        except Exception as exc:
            failures.append(f"{name}: raised {type(exc).__name__}: {exc}")
    if failures:
        raise AssertionError(
            f"{subject} fails {len(failures)} conformance check(s):\n- " + "\n- ".join(failures)
        )
