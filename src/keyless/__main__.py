from keyless.cli.main import main

main()
