"""verdicts: draft AI-tool comparison pages from a panel of reviewer personas.

One module per stage; a draft flows through them in this order::

    tools/<slug>.toml ─┐
    personas/*.toml ───┼─ load ─> render ─> generate ──────────────> assemble ─> write
    prompts/*.j2 ──────┘    (prompts)  │  cache ── backends ── retry       (page)    outputs/<a>-vs-<b>.md
                                       └─ validate (re-ask on invalid replies)

Every write also records ``provenance`` (outputs/<a>-vs-<b>.provenance.json): the page as generated and what
each section was made from. Later, when inputs change::

    provenance + current inputs ─> stale (which sections, and why) ─> refresh: generate the stale sections,
    merge3(last generated, the editor's file, new page) ─> write page, then provenance ─> report (PR body)

``settings`` merges flags, environment and pyproject.toml; ``errors`` holds every error we raise on purpose;
``draft`` runs the stages for one comparison; ``cli`` turns errors into messages.
"""

__version__ = "0.1.0"
