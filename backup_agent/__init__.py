"""The backup runtime: scheduled wal-g and restic jobs, the restore drill and the exporter.

It runs inside the backup image from one settings file (rendered by the BackupContainers
component) and never imports Pulumi.
"""
