"""Models: the embedded tiny default, Hugging Face bases with LoRA, and the artifact cache."""

import logging
import os
import sys
import warnings

#: The libraries whose log records below ERROR pwd-git hides unless --debug.
THIRD_PARTY_LOGGERS = ("transformers", "peft", "torch", "huggingface_hub", "accelerate", "datasets", "tokenizers",
                       "trl", "bitsandbytes", "lm_eval", "pypdf", "rdflib")
_debug = False


def quiet_libraries(debug: bool = False) -> None:
    """The one switch for third-party noise. Unless `debug`: no Python warnings (pwd-git's own
    messages go through logging, never `warnings`, so every warning is a library's), library
    log records below ERROR hidden, no library progress bars. With `debug` all of it shows.
    The CLI calls it first thing; `quiet_transformers` re-applies it once transformers is loaded."""
    global _debug
    _debug = debug
    if debug:
        return
    for name, value in {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_VERBOSITY": "error", "DATASETS_VERBOSITY": "error",
                        "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}.items():
        os.environ.setdefault(name, value)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if not sys.warnoptions:  # an explicit `python -W ...` / PYTHONWARNINGS still wins
        warnings.simplefilter("ignore")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def quiet_transformers() -> None:
    """Offline (pwd-git never downloads at run time), and third-party noise as quiet_libraries set it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers  # noqa: F401  (so quiet_libraries sets its own logging too)

    quiet_libraries(_debug)
