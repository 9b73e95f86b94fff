from aioface._cli import main

main()
