"""Watching a new version after the switch: observers, their verdicts, the watch step.

- :mod:`.health`: the :class:`Observer` protocol, :class:`Verdict`, :class:`HealthObserver`
  (the checklist's during-deploy limits);
- :mod:`.rules_observer`: the RB-1 rules correlated with the baseline (RB-2);
- :mod:`.watch`: the ``Observe`` step's handler (the stability window, scale-outs, decisions).
"""

from deployops.engine.observe.health import (
    HealthObserver,
    Observer,
    ObserverFactory,
    ScaleAware,
    Verdict,
)

__all__ = ["HealthObserver", "Observer", "ObserverFactory", "ScaleAware", "Verdict"]
