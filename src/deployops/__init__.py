"""deployops: deployment operations for a web service.

Blue-green and rolling deploys behind health gates, metric-driven automatic rollback,
per-environment configuration, alarms, scaling and disaster recovery, on an embedded local
platform (HAProxy, real processes, PostgreSQL) or on AWS.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
