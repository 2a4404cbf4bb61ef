"""verdicts: draft AI-tool comparison pages from a panel of reviewer personas.

One module per stage; a draft flows through them in this order::

    tools/<slug>.toml ─┐                     session (cache, budget, run log)
    personas/*.toml ───┼─ load ─> project ─> generate ───────────────────> assemble ─> write
    prompts/*.j2 ──────┘          (plan:      │ backends ─ local       (page)       outputs/<a>-vs-<b>.md
                                   render,    │ retry                               + provenance sidecar
                                   cache key) └ validate (re-ask on invalid replies)

Every write also records ``provenance`` (outputs/<a>-vs-<b>.provenance.json): the page as generated and what
each section was made from. Later, when inputs change::

    provenance + project ─> stale (which sections, and why) ─> refresh: session for the stale quotes,
    merge (three-way: last generated, the editor's file, new page) ─> write page, then provenance

The ground floor, imported by every stage and importing nothing above it: ``secret`` (what is secret; URLs as
shown and recorded; redacting messages, scrubbing replies), ``errors`` (every error we raise on purpose, the exit
statuses), ``settings`` (flags > environment > pyproject.toml > defaults), ``load`` (the editor's data
files) and ``review`` (Target, Job, Review, the reply format, section ids). ``limiter`` learns how many requests
each target takes at once; ``digests`` remembers what ``stale`` needs of unchanged drafts. ``costs`` prices what is
sent and counts what was; ``report`` prints it; ``facts`` lists a quote's claims its fact sheet does not support;
``router`` reads the Inference Providers router's model list (providers, status, prices, capabilities) for the
session; ``serving`` keeps, per (model, provider), what the providers the router names served and refused in a
run; ``dialects`` picks the response_format shape an endpoint understands; ``library`` reads the drafts' quotes
(approved texts, disputes).
Each command is ``command(root, args) -> Outcome`` in its own module (``draft``, ``dryrun`` for prompts,
``stale``, ``refresh``, ``pin``, ``accept``, ``forget``, ``preview``, ``runlog`` for log, ``check``,
``calibrate``, ``providers``); ``cli`` parses the command line, dispatches, and turns errors into messages.
"""

__version__ = "0.1.0"
