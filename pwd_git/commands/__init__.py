"""One module per CLI verb; each defines a click command and calls the library API."""

from pwd_git.commands.build import build
from pwd_git.commands.init import init
from pwd_git.commands.validate import validate

COMMANDS = [init, validate, build]
