import sys

from diffvis.cli import main

sys.exit(main())
