import PGSnapCLI
import PGSnapSystem

// First: a child started through pgsnap (ChildTrampoline) becomes that child here.
ChildTrampoline.enable()
PGSnapCommand.main()
