from supernet.cli import main

main()
