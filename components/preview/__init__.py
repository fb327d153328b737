"""The offline preview: the stack program under recording mocks, rendered for review."""
