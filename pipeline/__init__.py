"""verdicts: draft AI-tool comparison pages from a panel of reviewer personas.

The house, top to bottom (arrows point down; nothing imports a floor above it)::

    __main__ ─ startup (what python -m pipeline does for speed, and why)
    cli ─────> commands/  one thin module per command: add_parser (its arguments), run (calls an engine)
                  draft  prompts  stale  refresh  accept  pin  forget  preview  log  quotes  check  calibrate  providers
    engines    draft  dryrun  stale  refresh  accept  pin  forget  preview  runlog  quotes  check  calibrate  providers
                  │
    stages     session ─> generate ─> validate, distinct ─> assemble ─> write      library  merge  provenance
                  │           └─> backends/  chat (endpoint, Inference Providers), dialects, router, local
    ground     project  load  render  review  settings  errors  secret  cache  limiter  retry  costs  report ...

A draft flows through the stages in this order::

    tools/<slug>.toml ─┐                     session (cache, budget, run log)
    personas/*.toml ───┼─ load ─> project ─> generate ───────────────────> assemble ─> write
    prompts/*.j2 ──────┘          (plan:      │ backends/ (chat, local)  (page)      outputs/<a>-vs-<b>.md
                                   render,    │ retry                                + provenance sidecar
                                   cache key) ├ validate (re-ask on invalid replies)
                                              └ distinct (re-ask once a review that argues another
                                                lens's point on its tool; sameness measures it)

Every write also records ``provenance`` (outputs/<a>-vs-<b>.provenance.json): the page as generated and what
each section was made from. Later, when inputs change::

    provenance + project ─> stale (which sections, and why) ─> refresh: session for the stale quotes,
    merge (three-way: last generated, the editor's file, new page) ─> write page, then provenance

The ground floor, imported by every stage and importing nothing above it: ``secret`` (what is secret; URLs as
shown and recorded; redacting messages, scrubbing replies), ``errors`` (every error we raise on purpose, the exit
statuses), ``settings`` (flags > environment > pyproject.toml > defaults), ``load`` (the editor's data
files), ``review`` (Target, Job, Review, the reply format, section ids) and ``write`` (atomic writes that never
overwrite a save made meanwhile). ``limiter`` learns how many requests each target takes at once; ``digests``
remembers what ``stale`` needs of unchanged drafts. ``costs`` prices what is sent and counts what was;
``report`` prints it; ``facts`` lists a quote's claims its fact sheet does not support; ``serving`` keeps, per
(model, provider), what the providers the router names served and refused in a run; ``library`` reads the
drafts' quotes (approved texts, disputes); ``sameness`` tells two quotes that make the same point and lists stock
phrases, ``voices`` measures both on the calibration corpus (``calibration/``). ``backends/router`` reads the
Inference Providers router's model list for the session; ``backends/dialects`` picks the response_format shape an
endpoint understands.

A command is ``pipeline.commands.<name>``: ``add_parser(subparsers)`` and ``run(root, args) -> Outcome``, which
imports its engine when it runs; ``cli`` parses the command line, dispatches, and turns errors into one message
and an exit status (``errors``: one meaning each). docs/design.md says more.
"""

__version__ = "0.1.0"
