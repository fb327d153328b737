"""What the stack program (`components/`) and the backup agent (`backup_agent/`) share.

Pure definitions only: this package imports nothing of ours, nothing of Pulumi and nothing of
boto3, so the agent's image (which has neither `components` nor Pulumi) carries it unchanged.
"""
