"""Planning apart from running: each operation kind's planner turns a request into a frozen
:class:`~deployops.domain.plan.Plan` (steps and settings) and changes nothing.

- :mod:`.deploy`: blue-green and rolling deployments (:data:`~.deploy.STRATEGIES`);
- :mod:`.rollback`: the manual rollback (RB-3), a listener flip or a redeploy.
"""
