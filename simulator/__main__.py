"""`python -m simulator`: the gateway simulator from the command line."""
import sys

from simulator import main

sys.exit(main())
