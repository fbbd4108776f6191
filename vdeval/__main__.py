from vdeval.cli import main

main()
