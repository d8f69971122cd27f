from ssgan.train import main

main()
