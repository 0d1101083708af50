import sys

from mixacm.cli import main

sys.exit(main())
