from norce_sync.cli import main

main()
