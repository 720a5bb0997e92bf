from padlock.cli.main import main

main()
