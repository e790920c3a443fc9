from deployops.cli.main import main

main()
