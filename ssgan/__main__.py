from ssgan.command_line import main

main()
