"""Review tooling around the stack: the offline preview, the committed snapshots and the cost
command. It runs the stack program (`components`, `infra/`) under Pulumi mocks and feeds what
it records to the `compliance` library; nothing below this package imports it."""
