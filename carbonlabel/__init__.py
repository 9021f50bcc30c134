"""carbonlabel: the command line that ties the runner's and the registry's commands together."""

__version__ = "0.1.0"
