"""The `backup-agent` commands, one module each. Every module registers its own sub-parser with
`register(commands)`, which sets the parser's `handler`: `cli` calls what the parsed command
names, so there is no list of commands to keep in step and no default command."""
