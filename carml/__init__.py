"""CarML core: what the CLI, the web app and the workers share.

Importing this package connects to nothing and imports no ML framework.
"""

__version__ = "0.1.0"
