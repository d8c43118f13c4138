"""`reconciler schema`: the JSON Schema of one lead document, for editors and pre-commit."""

from __future__ import annotations

import json

from reconciler.commands import EXIT_OK
from reconciler.console import Console
from reconciler.model import json_schema


def schema(console: Console) -> int:
    """Print the JSON Schema of one lead document."""
    console.say(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK
