"""`python -m local.emulator --port 0`: the emulator process (`server.py`)."""

from local.emulator.server import main

main()
