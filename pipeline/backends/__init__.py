"""Where a review is sent: every backend answers ``complete(target, messages) -> Completion`` (review.Backend).

- ``chat``: the chat-completions backends, both through huggingface_hub's InferenceClient: an OpenAI-compatible
  endpoint (vLLM, TGI, llama.cpp's server, Ollama) and Hugging Face Inference Providers through the router; and
  ``select_backend``, which picks one of them or the local model from the settings and the environment.
- ``dialects``: the ``response_format`` shape an endpoint understands, detected once per server and run.
- ``router``: the Inference Providers router's model list (providers, status, prices, capabilities), read at most
  once a day and kept in the cache directory.
- ``local``: the embedded model, in-process through llama-cpp-python.

Nothing here imports a command or an engine above it; the session (``pipeline.session``) drives them.
"""
