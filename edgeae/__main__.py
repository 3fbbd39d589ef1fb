from edgeae.cli import main

main()
