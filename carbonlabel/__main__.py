from carbonlabel.cli import main

main()
