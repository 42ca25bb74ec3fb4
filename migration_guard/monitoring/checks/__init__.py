"""The built-in health checks, one module per kind of evidence.

Each ``check_*`` function is registered by name in
:data:`migration_guard.monitoring.health.HEALTH_CHECKS` (and as an entry point of
``migration_guard.health_checks``); the framework that runs them is
:mod:`migration_guard.monitoring.health`.
"""
