import PGSnapCLI
PGSnapCommand.main()
