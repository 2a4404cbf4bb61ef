"""verdicts: draft AI-tool comparison pages from a panel of reviewer personas.

One module per stage; a draft flows through them in this order::

    tools/<slug>.toml ─┐
    personas/*.toml ───┼─ load ─> render ─> generate ──────────────> assemble ─> write
    prompts/*.j2 ──────┘    (prompts)  │  cache ── backends ── retry       (page)    outputs/<a>-vs-<b>.md
                                       └─ validate (re-ask on invalid replies)

``settings`` merges flags, environment and pyproject.toml; ``errors`` holds every error we raise on purpose;
``draft`` runs the stages for one comparison; ``cli`` turns errors into messages.
"""

__version__ = "0.1.0"
