"""Suite 2 ``chat-serving``: the standard request stream sent to an OpenAI-compatible server
under closed-loop load, one concurrency level after another, while the machines it runs on are
metered. Nothing here serves a model: the engine (vLLM, SGLang, TGI, ``transformers serve``) is
the operator's."""
