import sys

from bpstream.stream.cli import main

sys.exit(main())
