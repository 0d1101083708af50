import sys

from mixacm_suite.cli import main

sys.exit(main())
