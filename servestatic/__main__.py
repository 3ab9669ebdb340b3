from servestatic.cli import main

main()
