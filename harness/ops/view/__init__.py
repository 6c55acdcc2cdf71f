"""The execution view: the state machine drawn from its ASL with the path an execution took, its event
history, each state's input and output, as self-contained HTML pages (any target, local or deployed)."""
