"""Templates as they are deployed: `{{ dashboards/<name>.json }}` placeholders replaced by the
dashboard bodies, so that a body is kept and reviewed as JSON in dashboards/ while CloudFormation
receives it as the template of an `Fn::Sub` (resource names, region and stage substituted there).
`make deploy` packages the rendered templates; the tests lint them and check the bodies."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r'"\{\{ (dashboards/[a-z0-9-]+\.json) \}\}"')


def render_template(path: Path) -> str:
    """The template's text with every dashboard placeholder replaced by the body, as a YAML string."""

    def body(match: re.Match[str]) -> str:
        dashboard = json.loads((ROOT / match.group(1)).read_text())
        # A JSON string literal is a valid YAML double-quoted scalar.
        return json.dumps(json.dumps(dashboard, separators=(",", ":"), ensure_ascii=False), ensure_ascii=False)

    return PLACEHOLDER.sub(body, path.read_text())
