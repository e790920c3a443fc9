"""The names that are contracts, built in one place (DEP-1..DEP-4).

Every platform names a service's two colours, its listeners and its deploy lock the same way;
drivers, the engine and the CLI build those names here, never with f-strings of their own.

>>> prod_listener("web"), test_listener("web"), target_group("web", "green")
('web-prod', 'web-test', 'web-green')
>>> colour_of("web-green"), other_colour("green"), lock_key("staging", "web")
('green', 'blue', 'staging/web')
"""

from __future__ import annotations

__all__ = [
    "COLOURS",
    "colour_of",
    "colours",
    "database_state_key",
    "lock_key",
    "other_colour",
    "prod_listener",
    "service_of",
    "target_group",
    "test_listener",
]

COLOURS = ("blue", "green")


def prod_listener(service: str) -> str:
    """The listener that carries production traffic of ``service``."""
    return f"{service}-prod"


def test_listener(service: str) -> str:
    """The listener smoke checks go through before the switch (DEP-2)."""
    return f"{service}-test"


def target_group(service: str, colour: str) -> str:
    """A colour's target group; the platform's compute service has the same name."""
    return f"{service}-{colour}"


def colours(service: str) -> tuple[str, str]:
    """Both target groups of ``service``: ``(blue, green)``."""
    return target_group(service, "blue"), target_group(service, "green")


def other_colour(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


def colour_of(target_group_name: str) -> str:
    """``web-green`` -> ``green`` (empty when the name carries no colour)."""
    tail = target_group_name.rsplit("-", 1)[-1]
    return tail if tail in COLOURS else ""


def service_of(name: str) -> str:
    """``web-green`` / ``web-prod`` -> ``web``: the service a target group or listener is of."""
    head, _, tail = name.rpartition("-")
    return head if head and tail in (*COLOURS, "prod", "test") else name


def lock_key(environment: str, target: str) -> str:
    """The key of the lock every change to ``target`` in ``environment`` holds: deploys,
    rollbacks, restores, rotations and target-group deletions of one service exclude each
    other."""
    return f"{environment}/{target}"


def database_state_key(service: str) -> str:
    """The environment-state key of the database endpoint ``service`` was repointed to.

    >>> database_state_key("web")
    'database/web'
    """
    return f"database/{service}"
