from aioface.cli import main

main()
