from aioface._cli_ops import main

main()
