"""One module per CLI verb; each defines a click command and calls the library API."""

from pwd_git.commands.bisect import bisect, bisect_step
from pwd_git.commands.build import build
from pwd_git.commands.diagnose import diagnose
from pwd_git.commands.diff import diff
from pwd_git.commands.hooks import hooks
from pwd_git.commands.init import init
from pwd_git.commands.log import log, show
from pwd_git.commands.notes import notes
from pwd_git.commands.patch import patch
from pwd_git.commands.queue import queue
from pwd_git.commands.run import run
from pwd_git.commands.status import status
from pwd_git.commands.test import test
from pwd_git.commands.textconv import textconv
from pwd_git.commands.train import train
from pwd_git.commands.validate import validate
from pwd_git.commands.worker import worker

COMMANDS = [init, validate, build, status, diff, train, test, run, log, show, notes, diagnose, patch,
            bisect, bisect_step, hooks, queue, worker, textconv]
