"""Operating the backups: status, health monitor, notifications, drills and schedules.

Events flow one way: :mod:`.eventlog` stores and reads them, :mod:`.emit`
records and notifies (and gives commands the ``sink`` they hand to engines),
:mod:`.notify` delivers, :mod:`.reports` turns other engines' outcomes into
events. :mod:`.health` runs the checks of :mod:`.checks` for :mod:`.monitor`.

Every module here reads the backup location through :mod:`migration_guard.backup`
and never touches a database itself, except :mod:`.drill` (through ``verify``)
and the protection-drift health check.
"""
