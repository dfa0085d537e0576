"""antiphon: a platform for intelligent musical instruments.

Importing the package is cheap on purpose: the instrument path must start fast and
never pull in an ML framework. Subpackages are imported where they are used.
"""

__version__ = "0.1.0"
