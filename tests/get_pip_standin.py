"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap its venvs.

ansible-test sanity --venv fetches get-pip.py from a host outside the package
registries this project may reach. tests/run places this file in ansible-test's
cache instead: it installs the pip bundled with Python (ensurepip), then lets
that pip install what ansible-test asked for (a pinned pip) from the package index.
"""

import ensurepip
import os
import subprocess
import sys

environment = dict(os.environ)  # ensurepip sets PIP_CONFIG_FILE=/dev/null in os.environ
ensurepip.bootstrap()
# get-pip.py options pip itself does not know.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=environment))
