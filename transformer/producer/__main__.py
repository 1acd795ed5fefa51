from transformer.producer.cli import main

main()
