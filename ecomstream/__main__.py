from ecomstream.cli import main

main()
