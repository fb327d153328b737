"""Pulumi components of the backup store and the pure builders they wire (policies, bucket
configuration, settings, container specs)."""
