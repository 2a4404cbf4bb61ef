"""The commands of ``python -m pipeline``, one thin module each: ``add_parser`` declares its arguments, ``run``
calls the engine (the flat modules of ``pipeline``) and returns its Outcome. A command imports its engine when it
runs, so that parsing the command line (``--help`` included) loads none of them.

Commands sit on top of the house: an engine never imports a command.
"""

from __future__ import annotations

# Command name -> its module here, in the order ``--help`` lists them.
COMMANDS = {
    "draft": "draft",
    "stale": "stale",
    "refresh": "refresh",
    "prompts": "prompts",
    "log": "log",
    "preview": "preview",
    "accept": "accept",
    "calibrate": "calibrate",
    "quotes": "quotes",
    "forget": "forget",
    "providers": "providers",
    "check": "check",
    "pin": "pin",
}
