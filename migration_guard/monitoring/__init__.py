"""Operating the backups: status, health monitor, notifications, drills and schedules.

Every module here reads the backup location through :mod:`migration_guard.backup`
and never touches a database itself, except :mod:`.drill` (through ``verify``)
and the protection-drift health check.
"""
